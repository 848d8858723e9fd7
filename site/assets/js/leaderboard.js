// The leaderboard table's controls: sort, filter, column picker and the models ticked for comparison. All of it
// lives in the address (#sort=dice&dir=desc&q=unet&cols=gflops&sel=a,b&pmax=10&smin=50), so a view can be shared
// as a link and the back button steps through changes. Built on the table site_tables.py writes (data-sort on every cell).
(function () {
  var table = document.getElementById("leaderboard");
  if (!table) return;
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var keys = headers.map(function (th) { return th.dataset.key; });
  // What the filter box matches: the model's id (architecture, encoder, initialisation), its status in the
  // CSV's own words (ok, degenerate, failed) and, for a submission, "submission".
  var texts = new Map(rows.map(function (row) {
    return [row, (row.cells[0].textContent + " " + row.dataset.status + " " +
                  (row.dataset.source === "external" ? "submission external" : "grid")).toLowerCase()];
  }));
  // Numeric limits, one step each: "under 10 M parameters", "at least 50 images/s". A model without the value
  // (a submission of masks has no size or speed) is hidden while its limit is set.
  var LIMITS = [
    { param: "pmax", key: "params", label: "max M params", title: "at most this many million parameters", at: function (v, x) { return v <= x; } },
    { param: "smin", key: "speed", label: "min images/s", title: "at least this many images per second of inference", at: function (v, x) { return v >= x; } },
  ].filter(function (limit) { return keys.indexOf(limit.key) >= 0; });
  var hasSubmissions = rows.some(function (row) { return row.dataset.source === "external"; });
  var defaults = headers.map(function (th) { return !th.hasAttribute("hidden"); });

  function readState() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    var list = function (name) { return (params.get(name) || "").split(",").filter(Boolean); };
    return {
      sort: params.get("sort") || "rank",
      dir: params.get("dir") || "",
      q: params.get("q") || "",
      cols: list("cols"),  // columns shown beyond the defaults
      hide: list("hide"),  // default columns hidden
      sel: list("sel"),
      src: params.get("src") === "grid" ? "grid" : "",  // "grid": the benchmark's own models only
      limits: LIMITS.reduce(function (found, limit) {
        var value = Number(params.get(limit.param));
        if (params.get(limit.param) && isFinite(value)) found[limit.param] = value;
        return found;
      }, {}),
    };
  }

  function writeState(state, replace) {
    var params = new URLSearchParams();
    if (state.sort !== "rank" || state.dir) params.set("sort", state.sort);
    if (state.dir) params.set("dir", state.dir);
    if (state.q) params.set("q", state.q);
    if (state.cols.length) params.set("cols", state.cols.join(","));
    if (state.hide.length) params.set("hide", state.hide.join(","));
    if (state.sel.length) params.set("sel", state.sel.join(","));
    if (state.src) params.set("src", state.src);
    LIMITS.forEach(function (limit) {
      if (state.limits[limit.param] !== undefined) params.set(limit.param, String(state.limits[limit.param]));
    });
    var hash = params.toString().replace(/%2C/g, ",");
    var url = location.pathname + location.search + (hash ? "#" + hash : "");
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    apply(state);
  }

  // The natural first direction of a column: best first (higher-is-better descending, ranks ascending).
  function defaultDir(key) {
    var th = headers[keys.indexOf(key)];
    return th && th.dataset.dir === "up" ? "desc" : "asc";
  }

  function sortValue(row, index) {
    if (index === 0) return row.dataset.id;
    var text = row.cells[index].dataset.sort;
    if (text === undefined || text === "") return null;
    var number = Number(text);
    return isNaN(number) ? text : number;
  }

  function sortRows(key, dir) {
    var index = keys.indexOf(key);
    if (index < 0) return;
    var sign = dir === "desc" ? -1 : 1;
    var ordered = rows.slice().sort(function (a, b) {
      var x = sortValue(a, index), y = sortValue(b, index);
      if (x === null && y === null) return 0;
      if (x === null) return 1;  // missing values last, whichever the direction
      if (y === null) return -1;
      if (x < y) return -sign;
      if (x > y) return sign;
      return 0;
    });
    ordered.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (th, i) {
      th.setAttribute("aria-sort", i === index ? (dir === "desc" ? "descending" : "ascending") : "none");
    });
  }

  function visible(state, index) {
    var key = keys[index];
    if (defaults[index]) return state.hide.indexOf(key) < 0;
    return state.cols.indexOf(key) >= 0;
  }

  function apply(state) {
    var columns = 0;
    headers.forEach(function (th, index) {
      var shown = index === 0 || visible(state, index);
      th.hidden = !shown;
      columns += shown ? 1 : 0;
      rows.forEach(function (row) { row.cells[index].hidden = !shown; });
    });
    table.classList.toggle("board--wide", columns > 10);
    sortRows(state.sort, state.dir || defaultDir(state.sort));
    var words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    var shownRows = 0;
    rows.forEach(function (row) {
      var text = texts.get(row);
      var match = words.every(function (word) { return text.indexOf(word) >= 0; }) &&
        (state.src !== "grid" || row.dataset.source !== "external") &&
        LIMITS.every(function (limit) {
          var bound = state.limits[limit.param];
          if (bound === undefined) return true;
          var value = sortValue(row, keys.indexOf(limit.key));
          return typeof value === "number" && limit.at(value, bound);
        });
      row.hidden = !match;
      shownRows += match ? 1 : 0;
      row.cells[0].querySelector("input.pick").checked = state.sel.indexOf(row.dataset.id) >= 0;
    });
    filter.value === state.q || (filter.value = state.q);
    if (source) source.value = state.src;
    limitInputs.forEach(function (input, i) {
      var bound = state.limits[LIMITS[i].param];
      if (document.activeElement !== input) input.value = bound === undefined ? "" : String(bound);  // not while typed in
    });
    count.textContent = shownRows + " of " + rows.length + " models";
    pickerBoxes.forEach(function (box) { box.checked = visible(state, Number(box.dataset.index)); });
    compare.textContent = "Compare " + state.sel.length + " selected";
    compare.href = site.root + "compare.html#models=" + state.sel.join(",");
    compare.classList.toggle("disabled", state.sel.length < 2);
    compare.setAttribute("aria-disabled", state.sel.length < 2 ? "true" : "false");
    compare.tabIndex = state.sel.length < 2 ? -1 : 0;  // a disabled button is out of the tab order
  }

  // The toolbar above the table.
  var toolbar = document.createElement("div");
  toolbar.className = "board-toolbar";
  var filter = document.createElement("input");
  filter.type = "search";
  filter.className = "table-filter";
  filter.placeholder = "Filter (e.g. unet resnet imagenet)";
  filter.setAttribute("aria-label", "Filter models");
  var limitInputs = LIMITS.map(function (limit) {
    var input = document.createElement("input");
    input.type = "number";
    input.min = "0";
    input.step = "any";
    input.inputMode = "decimal";
    input.className = "board-limit";
    input.dataset.limit = limit.param;
    input.placeholder = limit.label;
    input.title = limit.title;
    input.setAttribute("aria-label", limit.title);
    input.addEventListener("input", function () {
      var state = readState(), value = Number(input.value);
      if (input.value === "" || !isFinite(value)) delete state.limits[limit.param];
      else state.limits[limit.param] = value;
      writeState(state, true);  // while typing, one history entry
    });
    return input;
  });
  var count = document.createElement("span");
  count.className = "board-count";
  var picker = document.createElement("details");
  picker.className = "column-picker";
  var summary = document.createElement("summary");
  summary.textContent = "Columns";
  picker.appendChild(summary);
  var panel = document.createElement("div");
  panel.className = "picker-panel";
  picker.appendChild(panel);
  var pickerBoxes = [];
  headers.forEach(function (th, index) {
    if (index === 0) return;
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.index = String(index);
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + th.firstChild.textContent + (th.dataset.family === "paper" ? " (paper-compatible)" : "")));
    label.title = th.title;
    panel.appendChild(label);
    pickerBoxes.push(box);
    box.addEventListener("change", function () {
      var state = readState(), key = keys[index];
      state.cols = state.cols.filter(function (k) { return k !== key; });
      state.hide = state.hide.filter(function (k) { return k !== key; });
      if (box.checked && !defaults[index]) state.cols.push(key);
      if (!box.checked && defaults[index]) state.hide.push(key);
      writeState(state);
    });
  });
  var compare = document.createElement("a");
  compare.className = "md-button compare-button";
  var reset = document.createElement("a");
  reset.className = "board-reset";
  reset.href = "#";
  reset.textContent = "Reset view";
  // Grid only, or with the submissions ranked among them: offered where there are submissions.
  var source = null;
  if (hasSubmissions) {
    source = document.createElement("select");
    source.className = "board-source";
    source.setAttribute("aria-label", "Which models");
    [["", "With submissions"], ["grid", "Grid models only"]].forEach(function (option) {
      var element = document.createElement("option");
      element.value = option[0];
      element.textContent = option[1];
      source.appendChild(element);
    });
    source.addEventListener("change", function () {
      var state = readState();
      state.src = source.value;
      writeState(state);
    });
  }
  [filter].concat(limitInputs, [source, count, picker, compare, reset]).forEach(function (element) {
    if (element) toolbar.appendChild(element);
  });
  table.parentNode.parentNode.insertBefore(toolbar, table.parentNode);

  // The picker floats: Esc or a click anywhere else closes it.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && picker.open) {
      picker.open = false;
      summary.focus();
    }
  });
  document.addEventListener("click", function (event) {
    if (picker.open && !picker.contains(event.target)) picker.open = false;
  });

  filter.addEventListener("input", function () {
    var state = readState();
    state.q = filter.value.trim();
    writeState(state, true);  // while typing, one history entry, not one per key
  });
  compare.addEventListener("click", function (event) {
    if (readState().sel.length < 2) event.preventDefault();
  });
  reset.addEventListener("click", function (event) {
    event.preventDefault();
    writeState({ sort: "rank", dir: "", q: "", cols: [], hide: [], sel: [], src: "", limits: {} });
  });
  headers.forEach(function (th, index) {
    th.tabIndex = 0;
    var choose = function () {
      var state = readState(), key = keys[index];
      var current = state.dir || defaultDir(state.sort);
      state.dir = state.sort === key ? (current === "desc" ? "asc" : "desc") : defaultDir(key);
      state.sort = key;
      writeState(state);
    };
    th.addEventListener("click", choose);
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();  // Space would scroll the page
        choose();
      }
    });
  });
  rows.forEach(function (row) {
    row.cells[0].querySelector("input.pick").addEventListener("change", function (event) {
      var state = readState(), id = row.dataset.id;
      state.sel = state.sel.filter(function (s) { return s !== id; });
      if (event.target.checked) state.sel.push(id);
      writeState(state);
    });
  });
  window.addEventListener("popstate", function () { apply(readState()); });
  window.addEventListener("hashchange", function () { apply(readState()); });
  apply(readState());
})();
