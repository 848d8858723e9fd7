// The one script every page loads (with tablesort): sortable tables with a filter box, and, only on the pages
// that need them, the chart runtime (vega, vega-embed: specs are compiled to Vega when the site is built), the
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

  function chartRuntime() {
    return load("vendor/vega.min.js").then(function () { return load("vendor/vega-embed.min.js"); });
  }

  // Render one Vega spec into an element; resolves with the vega View.
  function renderChart(target, spec) {
    return chartRuntime().then(function () {
      return vegaEmbed(target, spec, {
        mode: "vega",
        renderer: "svg",  // accessible (each mark has an aria-label) and crisp when zoomed
        // The editor needs the internet; exporting PNG/SVG works offline (with the title's data note).
        actions: { export: true, source: false, compiled: false, editor: false },
      });
    }).then(function (result) {
      target.classList.add("vega-ok");
      return result.view;
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
