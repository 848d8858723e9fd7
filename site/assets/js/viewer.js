// The volume viewer: a test volume's CT with a model's prediction over it (true positives, false positives,
// false negatives), in three planes and a 3-D rendering, drawn by NiiVue (vendored, WebGL2). The volumes come as
// base64 in generated scripts (viewer/<key>.js), so it works from file:// as over HTTP. Without WebGL2 it says so
// in one line and leaves the page's 2-D mask pictures to speak. Used by model pages and by the compare view
// (siteViewer.mount, siteViewer.link: viewers whose slice position moves together).
(function () {
  var WINDOWS = { lung: [-1350, 150], "soft tissue": [-160, 240] };  // W1500/L-600 and W400/L40, in HU
  var CROSSHAIR = [1, 0.85, 0, 1];  // amber: outside the true/false positive/negative palette
  var VIEWS = { "planes + 3-D": "multiplanar", axial: "axial", coronal: "coronal", sagittal: "sagittal", "3-D": "render" };

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function hasWebGL2() {
    try {
      return !!document.createElement("canvas").getContext("webgl2");
    } catch (error) {
      return false;
    }
  }

  function fallback(box) {
    box.textContent = "";
    box.appendChild(el("p", "The 3-D viewer needs WebGL2, which this browser does not offer; the mask pictures on this page show the same prediction in 2-D.", "viewer-fallback"));
    box.classList.add("viewer-fallback-shown");
  }

  function colours(box) {
    // data-colours: "r,g,b;r,g,b;r,g,b" for true positive, false positive, false negative (the mask pictures')
    var parts = box.dataset.colours.split(";").map(function (rgb) { return rgb.split(",").map(Number); });
    return {
      R: [0, parts[0][0], parts[1][0], parts[2][0]], G: [0, parts[0][1], parts[1][1], parts[2][1]],
      B: [0, parts[0][2], parts[1][2], parts[2][2]], A: [0, 255, 255, 255], I: [0, 1, 2, 3],
      labels: ["", "true positive", "false positive", "false negative"],
    };
  }

  function controls(box, nv) {
    var bar = el("div", null, "viewer-controls");
    var view = el("select");
    view.setAttribute("aria-label", "View");
    Object.keys(VIEWS).forEach(function (name) { view.appendChild(el("option", name)).value = name; });
    view.addEventListener("change", function () {
      var type = { multiplanar: nv.sliceTypeMultiplanar, axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal,
                   sagittal: nv.sliceTypeSagittal, render: nv.sliceTypeRender }[VIEWS[view.value]];
      nv.setSliceType(type);
    });
    var windowing = el("select");
    windowing.setAttribute("aria-label", "Window");
    Object.keys(WINDOWS).forEach(function (name) { windowing.appendChild(el("option", name + " window")).value = name; });
    windowing.addEventListener("change", function () {
      nv.volumes[0].cal_min = WINDOWS[windowing.value][0];
      nv.volumes[0].cal_max = WINDOWS[windowing.value][1];
      nv.updateGLVolume();
    });
    var overlay = el("input");
    overlay.type = "checkbox";
    overlay.checked = true;
    overlay.className = "viewer-overlay";
    var opacity = el("input");
    opacity.type = "range";
    opacity.min = "0";
    opacity.max = "1";
    opacity.step = "0.05";
    opacity.value = "0.7";
    opacity.setAttribute("aria-label", "Overlay opacity");
    function applyOverlay() { nv.setOpacity(1, overlay.checked ? Number(opacity.value) : 0); }
    overlay.addEventListener("change", applyOverlay);
    opacity.addEventListener("input", applyOverlay);
    var outline = el("input");
    outline.type = "checkbox";
    outline.className = "viewer-outline";
    var labels = nv.volumes[1], filled = labels.img.slice(), edges = null;  // NVImage: img, hdr.dims
    outline.addEventListener("change", function () {
      edges = edges || outlineOf(filled, labels.hdr.dims);
      labels.img = outline.checked ? edges : filled;
      nv.updateGLVolume();
    });
    var label = function (input, text) { var l = el("label"); l.appendChild(input); l.appendChild(document.createTextNode(" " + text)); return l; };
    [view, windowing, label(overlay, "prediction"), label(opacity, "opacity"), label(outline, "outline")]
      .forEach(function (node) { bar.appendChild(node); });
    var legend = el("span", null, "viewer-legend");
    var lut = colours(box);
    ["true positive", "false positive", "false negative"].forEach(function (name, index) {
      var key = el("span", name, "mask-key");
      key.style.background = "rgb(" + lut.R[index + 1] + "," + lut.G[index + 1] + "," + lut.B[index + 1] + ")";
      legend.appendChild(key);
    });
    bar.appendChild(legend);
    return bar;
  }

  // The labels' edges: a labelled voxel is kept where one of its four in-plane neighbours differs from it, so
  // that the CT under a prediction stays visible with the prediction's outline drawn in its colours.
  function outlineOf(img, dims) {
    var nx = dims[1], ny = dims[2], nz = dims[3], out = new img.constructor(img.length);
    for (var z = 0; z < nz; z++) {
      for (var y = 0; y < ny; y++) {
        for (var x = 0; x < nx; x++) {
          var i = x + nx * (y + ny * z), v = img[i];
          if (!v) continue;
          if (x === 0 || x === nx - 1 || y === 0 || y === ny - 1 || img[i - 1] !== v || img[i + 1] !== v ||
              img[i - nx] !== v || img[i + nx] !== v) out[i] = v;
        }
      }
    }
    return out;
  }

  // Where the viewer opens: the axial slice with the most target voxels (true positives and false negatives,
  // labels 1 and 3: what the model should find), the one nearest the middle among equals; only in a volume
  // with no target, the slice with the most predicted voxels; the middle slice when nothing is labelled. (The
  // volume's third axis is its slices, upwards.) A lesion model's false positives elsewhere never decide it.
  var TARGET = { 1: true, 3: true };

  function busiest(img, dims) {
    var best = busiestOf(img, dims, function (v) { return TARGET[v] === true; });
    if (best < 0) best = busiestOf(img, dims, function (v) { return v !== 0; });
    return [0.5, 0.5, best < 0 ? 0.5 : (best + 0.5) / dims[3]];
  }

  function busiestOf(img, dims, counts) {
    var plane = dims[1] * dims[2], nz = dims[3], middle = (nz - 1) / 2, best = -1, bestCount = 0;
    for (var z = 0; z < nz; z++) {
      var count = 0;
      for (var i = z * plane; i < (z + 1) * plane; i++) if (img[i] && counts(img[i])) count++;
      if (count > bestCount || (count && count === bestCount && Math.abs(z - middle) < Math.abs(best - middle))) {
        best = z;
        bestCount = count;
      }
    }
    return best;
  }

  function sliceLabel(nv, text) {
    var dims = nv.volumes[0].hdr.dims;
    return function (location) {
      var vox = location && location.vox ? location.vox : [0, 0, 0];
      text.textContent = "axial slice " + (Math.round(vox[2]) + 1) + " of " + dims[3] + " · coronal " +
        (Math.round(vox[1]) + 1) + " of " + dims[2] + " · sagittal " + (Math.round(vox[0]) + 1) + " of " + dims[1] +
        " (arrow keys: up and down step the axial slice; left and right the sagittal)";
    };
  }

  // Arrow keys step the slices when the canvas has the focus (and say where they are).
  function keys(canvas, nv, update) {
    canvas.addEventListener("keydown", function (event) {
      var steps = { ArrowUp: [0, 0, 1], ArrowDown: [0, 0, -1], PageUp: [0, 0, 5], PageDown: [0, 0, -5],
                    ArrowLeft: [-1, 0, 0], ArrowRight: [1, 0, 0] }[event.key];
      if (!steps) return;
      event.preventDefault();
      event.stopPropagation();  // NiiVue's own key handling would step twice
      nv.moveCrosshairInVox(steps[0], steps[1], steps[2]);
      update({ vox: nv.frac2vox(nv.scene.crosshairPos) });
    }, true);
  }

  function mount(box) {
    if (box.dataset.mounted) return Promise.resolve(box.viewer);
    box.dataset.mounted = "1";
    if (!hasWebGL2()) {
      fallback(box);
      return Promise.resolve(null);
    }
    var canvas = el("canvas");
    canvas.height = 420;
    canvas.tabIndex = 0;  // focusable: the arrow keys step the slices
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "Volume viewer: test volume " + (box.dataset.volume || "") + " with the " +
      "prediction over the CT (true positives, false positives, false negatives), in three planes and 3-D");
    var frame = el("div", null, "viewer-canvas");
    frame.appendChild(canvas);
    box.textContent = "";
    var status = el("p", "Loading the volume…", "viewer-status");
    box.appendChild(status);
    box.appendChild(frame);
    var ct = box.dataset.ct, labels = box.dataset.labels;
    return Promise.all([site.load("vendor/niivue.umd.js"), site.loadData("viewer/" + ct + ".js"),
                        site.loadData("viewer/" + labels + ".js")]).then(function () {
      // isSliceMM: planes drawn in millimetres, so anisotropic voxels (5 mm slices of 0.7 mm pixels) keep
      // their true aspect in the coronal and sagittal planes.
      var nv = new niivue.Niivue({
        backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false, dragAndDropEnabled: false,
        loadingText: "", logLevel: "error", multiplanarShowRender: niivue.SHOW_RENDER.ALWAYS,
        crosshairColor: CROSSHAIR, isSliceMM: true,
      });
      return nv.attachToCanvas(canvas).then(function () {
        return niivue.NVImage.loadFromBase64({
          base64: window.viewerVolumes[ct], name: ct + ".nii.gz", colormap: "gray",
          cal_min: WINDOWS.lung[0], cal_max: WINDOWS.lung[1], trustCalMinMax: true,
        });
      }).then(function (image) {
        nv.addVolume(image);
        return niivue.NVImage.loadFromBase64({ base64: window.viewerVolumes[labels], name: labels + ".nii.gz", opacity: 0.7 });
      }).then(function (image) {
        image.setColormapLabel(colours(box));  // a label map: 1, 2, 3 in the mask pictures' colours, 0 clear
        nv.addVolume(image);
        nv.setSliceType(nv.sliceTypeMultiplanar);
        nv.scene.crosshairPos = busiest(image.img, image.hdr.dims);
        var position = el("p", null, "viewer-position");
        var update = sliceLabel(nv, position);
        nv.onLocationChange = update;
        nv.updateGLVolume();
        status.remove();
        box.insertBefore(controls(box, nv), frame);
        box.appendChild(position);
        update({ vox: nv.frac2vox(nv.scene.crosshairPos) });
        keys(canvas, nv, update);
        box.classList.add("viewer-ok");
        box.viewer = nv;
        return nv;
      });
    }).catch(function (error) {
      status.textContent = "The viewer could not load: " + error;
      box.classList.add("viewer-error");
      console.error(error);
      return null;
    });
  }

  // Viewers whose crosshair and 3-D view move together.
  function link(viewers) {
    var live = viewers.filter(Boolean);
    live.forEach(function (nv) {
      nv.broadcastTo(live.filter(function (other) { return other !== nv; }), { "2d": true, "3d": true, sliceType: true });
    });
  }

  window.siteViewer = { mount: mount, link: link };
  // On a model page a viewer loads when it comes near the screen: its volumes (megabytes at the paper's size)
  // and NiiVue are not part of the page's weight for a reader who never scrolls there.
  var pending = Array.prototype.filter.call(document.querySelectorAll(".viewer"), function (box) {
    return !box.closest("#compare");
  });
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          mount(entry.target);
        }
      });
    }, { rootMargin: "400px" });
    pending.forEach(function (box) { observer.observe(box); });
  } else {
    pending.forEach(mount);
  }
})();
