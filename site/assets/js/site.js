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

  // Render one Vega spec (compiled from Vega-Lite when the site was built) into an element; resolves with the
  // vega View. Tooltips are the browser's own; the controls a spec binds go in a box under the chart.
  function renderChart(target, spec) {
    // Chart pages have vega in their head already (deferred); a page that gained a chart later loads it here.
    return (window.vega ? Promise.resolve() : load("vendor/vega.min.js")).then(function () {
      var chart = document.createElement("div");
      var bindings = document.createElement("div");
      bindings.className = "vega-bindings";
      target.appendChild(chart);
      target.appendChild(bindings);
      var view = new vega.View(vega.parse(spec), { renderer: "svg", container: chart, bind: bindings, hover: true });
      return view.runAsync();
    }).then(function (view) {
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

  var FILTER_MIN_ROWS = 8;
  function addFilter(table) {
    var rows = table.tBodies[0] ? Array.prototype.slice.call(table.tBodies[0].rows) : [];
    if (rows.length < FILTER_MIN_ROWS || table.dataset.filterable) return;
    table.dataset.filterable = "1";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "table-filter";
    box.placeholder = "Filter " + rows.length + " rows (e.g. unet resnet imagenet)";
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

  window.site = { load: load, loadData: loadData, renderChart: renderChart, root: root };

  function start() {
    setUpTables();
    if (document.querySelector("script.vega-spec")) renderCharts();
    if (document.getElementById("leaderboard")) load("leaderboard.js");
    if (document.getElementById("compare")) load("compare.js");
    if (document.querySelector(".viewer")) load("viewer.js");
  }
  if (document.readyState !== "loading") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
