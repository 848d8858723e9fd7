// The one script every page loads (with tablesort): sortable tables with a filter box, and, only on the pages
// that need them, the chart runtime (vega alone: specs are compiled to Vega when the site is built), the
// leaderboard's controls, the compare view and the volume viewer. Everything is a <script> from the site
// itself, so pages work from file:// as over HTTP. No instant navigation: this runs once per page load.
(function () {
  var script = document.currentScript;
  var base = script ? script.src.replace(/site\.js(\?.*)?$/, "") : "assets/js/";  // ".../assets/js/"
  var loading = {};

  var root = base + "../../";  // the site's root: assets/js/ is two folders down

  // A script by its URL, loaded once; resolves when it has run.
  function loadUrl(url) {
    if (!loading[url]) {
      loading[url] = new Promise(function (resolve, reject) {
        var element = document.createElement("script");
        element.src = url;
        element.onload = resolve;
        element.onerror = function () { reject(new Error("could not load " + url)); };
        document.head.appendChild(element);
      });
    }
    return loading[url];
  }
  function load(path) { return loadUrl(base + path); }  // a script of assets/js/
  function loadData(path) { return loadUrl(root + path); }  // a generated data script, e.g. data/models.js

  // Download links for a chart, in place of a menu: SVG and PNG, with the title (and its data note) inside.
  function exportLinks(target, view) {
    var links = document.createElement("div");
    links.className = "chart-export";
    ["svg", "png"].forEach(function (type) {
      var link = document.createElement("a");
      link.textContent = type.toUpperCase();
      link.href = "#";
      link.addEventListener("click", function (event) {
        event.preventDefault();
        view.toImageURL(type, type === "png" ? 2 : 1).then(function (url) {
          var download = document.createElement("a");
          download.href = url;
          download.download = (target.id || "chart") + "." + type;
          download.click();
        });
      });
      links.appendChild(link);
    });
    target.appendChild(links);
  }

  // Fitting a chart to its column (a phone's 390 px as a laptop's): the specs are drawn at a desktop size, and
  // where that is wider than the column, panels side by side are stacked, then widths, band steps and axis
  // labels are shrunk by the overflow, and the chart drawn again (at most twice more).
  var PANEL_WIDTHS = /^(childWidth|child_width|concat_\d+_width|width)$/;

  function stack(spec) {
    if (!spec.layout) return false;
    spec.layout = Object.assign({}, spec.layout, { columns: 1 });
    return true;
  }

  // Narrower by ``overflow`` pixels: panel widths lose it (the axes and legends around them stay as they are),
  // band steps lose their share, long axis labels and titles are cut with an ellipsis.
  function shrink(spec, overflow, width, available) {
    var factor = Math.max(0.2, 1 - overflow / width);
    (spec.signals || []).forEach(function (signal) {
      if (typeof signal.value !== "number") return;
      if (PANEL_WIDTHS.test(signal.name)) signal.value = Math.max(80, Math.floor(signal.value - overflow - 2));
      if (signal.name === "x_step") signal.value = Math.max(6, Math.floor(signal.value * factor));
    });
    if (typeof spec.width === "number") spec.width = Math.max(80, Math.floor(spec.width - overflow - 2));
    if (spec.title && typeof spec.title === "object") spec.title.limit = Math.max(120, available - 12);
    var axes = (spec.axes || []).slice();
    (spec.marks || []).forEach(function (mark) { axes = axes.concat(mark.axes || []); });
    axes.forEach(function (axis) {
      var across = axis.orient === "bottom" || axis.orient === "top";
      if (!across) axis.labelLimit = Math.min(axis.labelLimit || Infinity, Math.floor(available * 0.35));
      if (across) axis.titleLimit = Math.max(60, available - 60);
    });
  }

  function draw(chart, bindings, spec) {
    chart.textContent = "";
    bindings.textContent = "";
    var view = new vega.View(vega.parse(spec), { renderer: "svg", container: chart, bind: bindings, hover: true });
    return view.runAsync();
  }

  function fitted(target, chart, bindings, spec, view, attempt) {
    var available = target.clientWidth;
    var svg = chart.querySelector("svg");
    var width = svg ? Number(svg.getAttribute("width")) || svg.getBoundingClientRect().width : 0;  // as drawn
    if (!available || width <= available || attempt > 4) return Promise.resolve(view);
    var copy = JSON.parse(JSON.stringify(spec));
    if (!(attempt === 0 && stack(copy))) shrink(copy, Math.ceil(width - available) + 2, width, available);
    view.finalize();
    return draw(chart, bindings, copy).then(function (next) {
      return fitted(target, chart, bindings, copy, next, attempt + 1);
    });
  }

  // Render one Vega spec (compiled from Vega-Lite when the site was built) into an element; resolves with the
  // vega View. Tooltips are the browser's own; the controls a spec binds go in a box under the chart.
  function renderChart(target, spec) {
    // Chart pages have vega in their head already (deferred); a page that gained a chart later loads it here.
    var chart, bindings;
    return (window.vega ? Promise.resolve() : load("vendor/vega.min.js")).then(function () {
      chart = document.createElement("div");
      bindings = document.createElement("div");
      bindings.className = "vega-bindings";
      target.appendChild(chart);
      target.appendChild(bindings);
      return draw(chart, bindings, spec);
    }).then(function (view) {
      return fitted(target, chart, bindings, spec, view, 0);
    }).then(function (view) {
      target.vegaView = view;  // a render signal for scripts and tests: vegaView.runAsync() after a change
      target.classList.add("vega-ok");
      exportLinks(target, view);
      return view;
    }).catch(function (error) {
      target.classList.add("vega-error");
      target.textContent = "This chart failed to render: " + error;
      console.error(error);
    });
  }

  function renderCharts() {
    document.querySelectorAll("script.vega-spec").forEach(function (element) {
      var target = document.getElementById(element.dataset.target);
      if (!target || target.dataset.rendered) return;
      target.dataset.rendered = "1";
      renderChart(target, JSON.parse(element.textContent));
    });
  }

  var FILTER_MIN_ROWS = 15;  // a table of the nine test volumes needs no filter
  function addFilter(table) {
    var rows = table.tBodies[0] ? Array.prototype.slice.call(table.tBodies[0].rows) : [];
    if (rows.length < FILTER_MIN_ROWS || table.dataset.filterable) return;
    table.dataset.filterable = "1";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "table-filter";
    box.placeholder = "Filter the " + rows.length + " rows";
    box.setAttribute("aria-label", "Filter table rows");
    box.addEventListener("input", function () {
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
      rows.forEach(function (row) {
        var text = row.textContent.toLowerCase();
        row.style.display = words.every(function (w) { return text.indexOf(w) >= 0; }) ? "" : "none";
      });
    });
    var wrapper = table.closest(".md-typeset__scrollwrap") || table;
    wrapper.parentNode.insertBefore(box, wrapper);
  }

  function setUpTables() {
    document.querySelectorAll("article table:not([class])").forEach(function (table) {
      if (!table.dataset.sortable) {
        table.dataset.sortable = "1";
        new Tablesort(table);
      }
      addFilter(table);
    });
  }

  // The search box finds models too: the search index every page loads leaves the 600 model pages out (they
  // would triple it), so model ids, architectures, encoders and submissions' titles are matched here, against
  // data/models.js, loaded the first time the search box is used.
  var MODEL_HITS = 12;
  function setUpModelSearch() {
    var input = document.querySelector(".md-search__input");
    var output = document.querySelector(".md-search__output .md-search-result") ||
      document.querySelector(".md-search-result");
    if (!input || !output) return;
    var box = document.createElement("div");
    box.className = "model-hits";
    box.hidden = true;
    box.setAttribute("aria-live", "polite");
    output.insertBefore(box, output.firstChild);
    var models = null;
    function index() {
      if (!models) {
        models = loadData("data/models.js").then(function () {
          return window.benchmarkIndex.models.map(function (model) {
            return Object.assign({ text: (model.id + " " + model.id.replace(/[-_]/g, " ") + " " + model.status + " " +
                                          (model.title || "")).toLowerCase() }, model);
          });
        });
      }
      return models;
    }
    function show() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      if (!words.length) { box.hidden = true; return; }
      index().then(function (list) {
        var hits = list.filter(function (m) { return words.every(function (w) { return m.text.indexOf(w) >= 0; }); });
        box.textContent = "";
        box.hidden = hits.length === 0;
        if (!hits.length) return;
        var heading = document.createElement("p");
        heading.className = "model-hits__heading";
        heading.textContent = hits.length + (hits.length === 1 ? " model" : " models") + " match" +
          (hits.length === 1 ? "es" : "") + (hits.length > MODEL_HITS ? " (the first " + MODEL_HITS + ")" : "");
        box.appendChild(heading);
        var list_ = document.createElement("ul");
        hits.slice(0, MODEL_HITS).forEach(function (m) {
          var item = document.createElement("li");
          var link = document.createElement("a");
          link.href = root + "models/" + m.id + ".html";
          link.textContent = m.id;
          item.appendChild(link);
          var facts = m.status === "ok" ? "Dice " + Number(m.dice).toFixed(4) : m.status;
          item.appendChild(document.createTextNode(" · " + m.experiment + " · " + facts +
                                                   (m.source === "external" ? " · submission" : "")));
          list_.appendChild(item);
        });
        box.appendChild(list_);
      }).catch(function () { box.hidden = true; });
    }
    input.addEventListener("focus", index, { once: true });
    input.addEventListener("input", show);
  }

  window.site = { load: load, loadData: loadData, renderChart: renderChart, root: root };

  // On a phone the data note is one line; a tap shows all of it.
  function setUpNotes() {
    document.querySelectorAll(".data-note").forEach(function (note) {
      note.addEventListener("click", function () { note.classList.toggle("data-note--open"); });
    });
  }

  function start() {
    var search = document.querySelector(".md-search");  // Material's search dialog has no name of its own
    if (search && !search.hasAttribute("aria-label")) search.setAttribute("aria-label", "Search the site and its models");
    setUpTables();
    setUpModelSearch();
    setUpNotes();
    if (document.querySelector("script.vega-spec")) renderCharts();
    if (document.getElementById("leaderboard")) load("leaderboard.js");
    if (document.getElementById("compare")) load("compare.js");
    if (document.querySelector(".viewer")) load("viewer.js");
    setUpTry();
  }

  // "Try it on your scan": its scripts load when the panel opens (try.html opens it), never with the page.
  function setUpTry() {
    var panel = document.getElementById("try-model");
    if (!panel) return;
    function scripts() { return Promise.all([load("nifti.js"), load("orient.js")]).then(function () { return load("try.js"); }); }
    if (panel.open) scripts();
    else panel.addEventListener("toggle", function () { if (panel.open) scripts(); }, { once: true });
  }
  if (document.readyState !== "loading") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
