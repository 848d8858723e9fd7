// Sortable data tables (vendored tablesort, as Material's "Data tables" page shows) and a filter box above
// every table long enough to need one.
(function () {
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
  function setUp() {
    document.querySelectorAll("article table:not([class])").forEach(function (table) {
      if (!table.dataset.sortable) {
        table.dataset.sortable = "1";
        new Tablesort(table);
      }
      addFilter(table);
    });
  }
  if (typeof document$ !== "undefined") document$.subscribe(setUp);
  else if (document.readyState !== "loading") setUp();
  else document.addEventListener("DOMContentLoaded", setUp);
})();
