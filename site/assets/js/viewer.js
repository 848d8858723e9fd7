// The volume viewer: a test volume's CT with a model's prediction over it (true positives, false positives,
// false negatives), in three planes and a 3-D rendering, drawn by NiiVue (vendored, WebGL2). The volumes come as
// base64 in generated scripts (viewer/<key>.js), so it works from file:// as over HTTP. Without WebGL2 it says so
// in one line and leaves the page's 2-D mask pictures to speak. Used by model pages and by the compare view
// (siteViewer.mount, siteViewer.link: viewers whose slice position moves together).
(function () {
  var WINDOWS = { lung: [-1350, 150], "soft tissue": [-160, 240] };  // W1500/L-600 and W400/L40, in HU
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
    outline.addEventListener("change", function () {
      nv.overlayOutlineWidth = outline.checked ? 1 : 0;
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

  function mount(box) {
    if (box.dataset.mounted) return Promise.resolve(box.viewer);
    box.dataset.mounted = "1";
    if (!hasWebGL2()) {
      fallback(box);
      return Promise.resolve(null);
    }
    var canvas = el("canvas");
    canvas.height = 420;
    var frame = el("div", null, "viewer-canvas");
    frame.appendChild(canvas);
    box.textContent = "";
    var status = el("p", "Loading the volume…", "viewer-status");
    box.appendChild(status);
    box.appendChild(frame);
    var ct = box.dataset.ct, labels = box.dataset.labels;
    return Promise.all([site.load("vendor/niivue.umd.js"), site.loadData("viewer/" + ct + ".js"),
                        site.loadData("viewer/" + labels + ".js")]).then(function () {
      var nv = new niivue.Niivue({
        backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false, dragAndDropEnabled: false,
        loadingText: "", logLevel: "error", multiplanarShowRender: niivue.SHOW_RENDER.ALWAYS,
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
        status.remove();
        box.insertBefore(controls(box, nv), frame);
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
