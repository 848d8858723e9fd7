// "Try it on your scan": a model of the build run in the reader's browser on their own CT, NIfTI or a DICOM series,
// with nothing uploaded. The model is its browser graph (pipeline.model.browser: predict's normalisation, resizes,
// network and threshold in one ONNX graph) fed with the published model.safetensors itself; onnxruntime-web runs
// it (WebGPU where the browser has it, else WebAssembly), dcm2niix's WebAssembly build converts a DICOM series, NiiVue shows the result. None of it loads
// before the reader opens the panel and runs a scan. Hooks for tests: #try-model[data-state] = idle, running, done
// or error; the message in [role=alert]; the mask offered as a#try-download.
(function () {
  var panel = document.getElementById("try-model");
  if (!panel) return;
  var assets = site.root + "assets/js/";
  var BATCH_VOXELS = 2000000;  // slices per onnxruntime call: a few at 512 x 512, the whole volume when small
  var ui = {}, sessions = {}, cancelled = false, running = false, viewer = null;

  function q(selector) { return panel.querySelector(selector); }

  // The panel's paths are relative to the site's root (a model page sits one folder down); a published remote's
  // direct link is a full URL.
  function url(path) { return /^[a-z]+:/i.test(path) ? path : site.root + path; }

  function setUp() {
    if (ui.input) return;
    ui = { input: q("input[type=file]"), folder: q(".try-folder"), test: q(".try-test"), cancel: q(".try-cancel"),
           progress: q(".try-progress"), status: q(".try-status"), alert: q("[role=alert]"), result: q(".try-result"),
           download: q("#try-download"), volume: q(".try-volume"), view: q(".try-viewer"), served: q(".try-file-protocol") };
    if (location.protocol === "file:") {
      ui.served.hidden = false;
      [ui.input, ui.test, ui.folder].forEach(function (node) { if (node) node.disabled = true; });
      return;
    }
    ui.input.addEventListener("change", function () { if (ui.input.files.length) start(Array.from(ui.input.files)); });
    if (ui.folder) ui.folder.addEventListener("change", function () { ui.input.webkitdirectory = ui.folder.checked; });
    if (ui.test) ui.test.addEventListener("click", function () { start(null); });
    ui.cancel.addEventListener("click", function () { cancelled = true; });
    panel.addEventListener("dragover", function (event) { event.preventDefault(); });
    panel.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) start(Array.from(event.dataTransfer.files));
    });
  }

  function say(text) { ui.status.textContent = text; }

  function setState(state) { panel.dataset.state = state; }

  function progress(done, total, text) {
    ui.progress.hidden = false;
    ui.progress.max = total;
    ui.progress.value = done;
    if (text) say(text);
  }

  function fetchBytes(url, what) {
    return fetch(url).then(function (response) {
      if (!response.ok) throw new Error("could not fetch " + what + " (" + url + ": HTTP " + response.status + ")");
      return response.arrayBuffer();
    }, function () { throw new Error("could not fetch " + what + " (" + url + ")"); })
      .then(function (buffer) { return new Uint8Array(buffer); });
  }

  // onnxruntime's WebGPU build where the browser offers a WebGPU adapter (the GPU runs the network), else its
  // WebAssembly build (every browser). Both define the global `ort`; only one is ever loaded. The promise gives
  // the execution providers to ask for, in order: WebGPU falls back to WebAssembly in the same build.
  var backend = null;
  function loadOrt() {
    if (!backend) {
      var adapter = navigator.gpu && navigator.gpu.requestAdapter ?
        navigator.gpu.requestAdapter().catch(function () { return null; }) : Promise.resolve(null);
      backend = adapter.then(function (found) {
        var gpu = Boolean(found);
        return site.load(gpu ? "vendor/ort/ort.webgpu.min.js" : "vendor/ort/ort.wasm.min.js").then(function () {
          ort.env.wasm.wasmPaths = assets + "vendor/ort/";
          // Threads need a cross-origin-isolated page (COOP/COEP headers), which a static host rarely sends.
          ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
          ort.env.logLevel = "error";
          return gpu ? ["webgpu", "wasm"] : ["wasm"];
        });
      });
    }
    return backend;
  }

  // A model's session: its graph, and its weights file given to onnxruntime as the graph's external data. On
  // WebGPU, a graph the GPU cannot take (an operator, a device lost) is run on WebAssembly instead, and the panel
  // says which ran it (data-backend).
  function session(model) {
    var key = model.graph + "|" + model.weights;
    if (!sessions[key]) {
      sessions[key] = Promise.all([fetchBytes(url(model.graph), "the model's graph"),
                                   fetchBytes(url(model.weights), "the model's weights"), loadOrt()]).then(function (parts) {
        function create(providers) {
          return ort.InferenceSession.create(parts[0], { executionProviders: providers, logSeverityLevel: 3,
            externalData: [{ path: "model.safetensors", data: parts[1] }] }).then(function (created) {
            panel.dataset.backend = providers[0];
            return created;
          });
        }
        var providers = parts[2];
        var made = providers[0] === "webgpu" ? create(providers).catch(function () { return create(["wasm"]); }) : create(providers);
        return made.catch(function (error) {
          throw new Error("the model's weights could not be loaded (" + String(error.message || error).split("\n")[0] + ")");
        });
      });
      sessions[key].catch(function () { delete sessions[key]; });
    }
    return sessions[key];
  }

  // The model's mask of a volume (x fastest, dims [nx, ny, nz]) in its own orientation; `lungs` a mask of the same
  // layout for a model that needs them. Slices in batches; the cancel button is honoured between batches.
  function segment(model, hu, dims, lungs, label) {
    var plane = dims[0] * dims[1], total = dims[2], mask = new Uint8Array(hu.length);
    var batch = Math.max(1, Math.min(total, Math.floor(BATCH_VOXELS / plane)));
    return session(model).then(function (sess) {
      function step(first) {
        if (cancelled) return Promise.reject(new Error("cancelled"));
        if (first >= total) return mask;
        var count = Math.min(batch, total - first), shape = [count, dims[1], dims[0]];
        var feeds = { slices: new ort.Tensor("float32", hu.slice(first * plane, (first + count) * plane), shape) };
        if (model.inputs.indexOf("lungs") >= 0) {
          feeds.lungs = new ort.Tensor("float32", Float32Array.from(lungs.subarray(first * plane, (first + count) * plane)), shape);
        }
        return sess.run(feeds).then(function (out) {
          mask.set(out.mask.data, first * plane);
          progress(first + count, total, label + ": slice " + (first + count) + " of " + total);
          return new Promise(function (resolve) { setTimeout(resolve, 0); });  // let the page paint and hear Cancel
        }).then(function () { return step(first + count); });
      }
      return step(0);
    });
  }

  function dicomToNifti(files) {
    say("Converting the DICOM series (dcm2niix, in this page)…");
    return import(assets + "vendor/dcm2niix/index.js").then(function (module) {
      var converter = new module.Dcm2niix();
      return converter.init().then(function () { return converter.input(files).run(); });
    }).then(function (outputs) {
      var images = Array.from(outputs).filter(function (file) { return /\.nii(\.gz)?$/.test(file.name); });
      if (images.some(function (file) { return /_Eq_\d+\.nii/.test(file.name); })) {
        throw new Error("the DICOM series is incomplete: its slices are unevenly spaced (a missing slice?)");
      }
      if (!images.length) throw new Error("dcm2niix found no CT series in these files");
      if (images.length > 1) throw new Error("these files hold " + images.length + " series; choose the files or the folder of one series");
      return images[0].arrayBuffer().then(function (buffer) { return { name: images[0].name, bytes: new Uint8Array(buffer) }; });
    });
  }

  function readInput(files) {
    if (files === null) {
      return fetchBytes(url(panel.dataset.testVolume), "the test volume").then(function (bytes) {
        return { name: panel.dataset.testName || "test-volume.nii.gz", bytes: bytes };
      });
    }
    var nifti = files.length === 1 && /\.nii(\.gz)?$/i.test(files[0].name);
    if (nifti) return files[0].arrayBuffer().then(function (buffer) { return { name: files[0].name, bytes: new Uint8Array(buffer) }; });
    return dicomToNifti(files);
  }

  // The panel's data of the model (prefix "") or of the lung model it needs (prefix "lung"): data-graph, data-lung-graph.
  function model(prefix) {
    function get(name) { return panel.dataset[prefix ? prefix + name.charAt(0).toUpperCase() + name.slice(1) : name]; }
    return { id: get("model"), graph: get("graph"), weights: get("weights"), inputs: (get("inputs") || "slices").split(","),
             orientation: get("orientation") || "" };
  }

  function start(files) {
    if (running) return;
    running = true;
    cancelled = false;
    setState("running");
    ui.alert.textContent = "";
    ui.result.hidden = true;
    ui.cancel.hidden = false;
    progress(0, 1, "Reading the scan…");
    var target = model(""), lungModel = model("lung"), input, scan, own;
    readInput(files).then(function (read) {
      input = read;
      return siteNifti.read(read.bytes);
    }).then(function (read) {
      scan = read;
      own = siteOrient.codes(scan.affine);
      say("Loading the model (" + (panel.dataset.weightsMb || "?") + " MB of weights, once)…");
      return loadOrt();
    }).then(function () {
      var turned = siteOrient.reorient(scan.hu, scan.dims, own, target.orientation);
      var lungs = Promise.resolve(null);
      if (target.inputs.indexOf("lungs") >= 0) {
        if (!lungModel.graph) throw new Error("this model needs the scan's lungs, and the build has no lung model to find them");
        var forLungs = siteOrient.reorient(scan.hu, scan.dims, own, lungModel.orientation);
        lungs = segment(lungModel, forLungs.data, forLungs.dims, null, "Lungs (" + lungModel.id + ")").then(function (mask) {
          return siteOrient.reorient(mask, forLungs.dims, lungModel.orientation || own, target.orientation || own).data;
        });
      }
      return lungs.then(function (lungMask) { return segment(target, turned.data, turned.dims, lungMask, target.id); })
        .then(function (mask) { return siteOrient.reorient(mask, turned.dims, target.orientation || own, own).data; });
    }).then(function (mask) {
      return finish(input, scan, mask, own);
    }).catch(function (error) {
      var message = String((error && error.message) || error);
      if (message === "cancelled") {
        setState("idle");
        say("Cancelled.");
      } else {
        setState("error");
        ui.alert.textContent = message.charAt(0).toUpperCase() + message.slice(1) + ".";
        say("");
      }
    }).then(function () {
      running = false;
      ui.cancel.hidden = true;
      ui.progress.hidden = true;
      ui.input.value = "";  // choosing the same file again is a new run
    });
  }

  function finish(input, scan, mask, own) {
    var count = 0;
    for (var i = 0; i < mask.length; i++) count += mask[i];
    var voxel = Math.abs(scan.pixdim[1] * scan.pixdim[2] * scan.pixdim[3]);
    var written = siteNifti.write(scan, mask);
    return siteNifti.gzip(written).then(function (packed) {
      var stem = input.name.replace(/\.nii(\.gz)?$/i, "");
      var name = stem + "-" + panel.dataset.model + "-mask.nii" + (packed ? ".gz" : "");
      if (ui.download.href) URL.revokeObjectURL(ui.download.href);
      ui.download.href = URL.createObjectURL(new Blob([packed || written], { type: "application/octet-stream" }));
      ui.download.download = name;
      ui.volume.textContent = (count * voxel / 1000).toFixed(1) + " ml segmented (" + count.toLocaleString("en") +
        " voxels of " + scan.dims.join(" x ") + ", " + own + "), in the scan's own geometry.";
      ui.result.hidden = false;
      setState("done");
      say("Done: the mask is ready (run on " + (panel.dataset.backend === "webgpu" ? "the GPU, WebGPU" : "the CPU, WebAssembly") + ").");
      show(input, packed || written, name);
    });
  }

  function show(input, maskBytes, maskName) {
    if (!document.createElement("canvas").getContext("webgl2")) return;
    site.load("vendor/niivue.umd.js").then(function () {
      ui.view.textContent = "";
      var canvas = document.createElement("canvas");
      canvas.height = 420;
      canvas.setAttribute("aria-label", "Your scan with the model's mask over it");
      ui.view.appendChild(canvas);
      viewer = new niivue.Niivue({ backColor: [0, 0, 0, 1], isColorbar: false, dragAndDropEnabled: false, logLevel: "error",
                                   loadingText: "", isSliceMM: true });
      return viewer.attachToCanvas(canvas).then(function () {
        return niivue.NVImage.loadFromFile({ file: new File([input.bytes], /\.nii(\.gz)?$/i.test(input.name) ? input.name : "scan.nii"),
                                             colormap: "gray", cal_min: -1350, cal_max: 150, trustCalMinMax: true });
      }).then(function (image) {
        viewer.addVolume(image);
        return niivue.NVImage.loadFromFile({ file: new File([maskBytes], maskName), colormap: "red", opacity: 0.5 });
      }).then(function (image) {
        viewer.addVolume(image);
        viewer.setSliceType(viewer.sliceTypeMultiplanar);
      });
    }).catch(function (error) { console.error(error); });
  }

  // try.html: a model picker whose options carry each model's panel data; #model=<id> picks one.
  var picker = document.getElementById("try-picker");
  function pick(id) {
    var option = Array.from(picker.options).filter(function (o) { return o.value === id; })[0] || picker.options[0];
    picker.value = option.value;
    ["model", "graph", "weights", "inputs", "orientation", "weightsMb", "lungModel", "lungGraph", "lungWeights",
     "lungInputs", "lungOrientation"].forEach(function (key) {
      if (option.dataset[key] !== undefined) panel.dataset[key] = option.dataset[key];
      else delete panel.dataset[key];
    });
    var name = panel.querySelector(".try-model-name");
    if (name) name.textContent = option.value;
  }
  if (picker) {
    var wanted = (location.hash.match(/model=([^&]+)/) || [])[1];
    pick(wanted ? decodeURIComponent(wanted) : picker.value);
    picker.addEventListener("change", function () {
      pick(picker.value);
      history.replaceState(null, "", "#model=" + encodeURIComponent(picker.value));
    });
  }

  panel.addEventListener("toggle", function () { if (panel.open) setUp(); });
  if (panel.open) setUp();
  window.siteTry = { setUp: setUp };
})();
