// The compare view: two or more models side by side. The choice lives in the address (#models=a,b), so it can
// be shared and the back button works. Each model's numbers come from data/models/<id>.js (a script, so that it
// loads from file:// too); data/models.js lists every model for the picker, and an id it does not know is skipped
// with a note. Paired differences: per test volume, the second model minus the first, with a Student t interval
// over the volumes (its quantiles come with the page, from scipy) from 5 volumes; with fewer, the wins alone.
// Text goes in with textContent only.
(function () {
  var root = document.getElementById("compare");
  if (!root) return;
  var confidence = Number(root.dataset.confidence) || 0.95;
  var quantiles = JSON.parse(document.getElementById("compare-t").textContent);  // degrees of freedom -> t
  var MIN_PAIRS = 5;
  var template = JSON.parse(document.getElementById("compare-loss-template").textContent);
  var METRICS = [
    ["dice", "Dice", "up", 4], ["nsd", "NSD", "up", 4], ["hd95", "HD95 (mm)", "down", 2],
    ["sensitivity", "sensitivity", "up", 4], ["specificity", "specificity", "up", 4], ["precision", "precision", "up", 4],
  ];
  var STATUS = { ok: "ok", degenerate: "degenerate", failed: "failed" };  // the CSV's words

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }
  function fmt(value, digits) {
    return value === null || value === undefined || isNaN(value) ? "–" : Number(value).toFixed(digits);
  }
  function signed(value, digits) {
    return (value > 0 ? "+" : "") + fmt(value, digits);
  }
  function selected() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    return (params.get("models") || "").split(",").filter(function (id) { return /^[a-z0-9_.~-]+$/.test(id); });
  }
  function choose(ids) {
    history.pushState(null, "", location.pathname + location.search + "#models=" + ids.join(","));
    render();
  }

  // Mean of the differences and its Student t interval over the volumes (null under MIN_PAIRS volumes).
  function pairedInterval(differences) {
    var n = differences.length;
    var mean = differences.reduce(function (a, b) { return a + b; }, 0) / n;
    if (n < MIN_PAIRS || !quantiles[String(n - 1)]) return { mean: mean, low: null, high: null };
    var variance = differences.reduce(function (a, d) { return a + (d - mean) * (d - mean); }, 0) / (n - 1);
    var half = quantiles[String(n - 1)] * Math.sqrt(variance / n);
    return { mean: mean, low: mean - half, high: mean + half };
  }

  function loadModel(id) {
    return site.loadData("data/models/" + id + ".js").then(function () {
      var model = (window.benchmarkModels || {})[id];
      if (!model) throw new Error("no data for " + id);
      return model;
    });
  }

  function picker(index, ids) {
    var box = el("div", null, "compare-picker");
    var experiments = {};
    index.forEach(function (m) { experiments[m.experiment] = true; });
    var experiment = el("select");
    experiment.setAttribute("aria-label", "Experiment");
    Object.keys(experiments).forEach(function (e) { experiment.appendChild(el("option", e)).value = e; });
    var model = el("select");
    model.setAttribute("aria-label", "Model to add");
    function fill() {
      model.textContent = "";
      index.filter(function (m) { return m.experiment === experiment.value && ids.indexOf(m.id) < 0; })
        .forEach(function (m) {
          var label = m.id + (m.status === "ok" ? " (Dice " + fmt(m.dice, 4) + ")" : " (" + STATUS[m.status] + ")");
          model.appendChild(el("option", label)).value = m.id;
        });
    }
    if (ids.length) {
      var first = index.filter(function (m) { return m.id === ids[0]; })[0];
      if (first) experiment.value = first.experiment;
    }
    experiment.addEventListener("change", fill);
    fill();
    var add = el("button", "Add", "md-button");
    add.type = "button";
    add.addEventListener("click", function () { if (model.value) choose(ids.concat([model.value])); });
    box.appendChild(el("span", "Add a model: "));
    [experiment, model, add].forEach(function (node) { box.appendChild(node); });
    var chips = el("div", null, "compare-chips");
    ids.forEach(function (id) {
      var chip = el("span", null, "chip");
      var link = el("a", id);
      link.href = site.root + "models/" + id + ".html";
      var remove = el("button", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "remove " + id);
      remove.addEventListener("click", function () { choose(ids.filter(function (x) { return x !== id; })); });
      chip.appendChild(link);
      chip.appendChild(remove);
      chips.appendChild(chip);
    });
    box.appendChild(chips);
    return box;
  }

  function metricsTable(models) {
    var table = el("table", null, "compare-table");
    var head = table.createTHead().insertRow();
    head.appendChild(el("th", "metric"));
    models.forEach(function (m) { head.appendChild(el("th", m.id)); });
    var body = table.createTBody();
    var rows = [
      ["status", function (m) { return STATUS[m.status] + (m.status_reason ? ": " + m.status_reason : ""); }],
      ["rank (95% interval), tier", function (m) {
        return m.rank === null ? "not ranked" : fmt(m.rank, 0) + " (" + fmt(m.rank_low, 0) + "–" + fmt(m.rank_high, 0) + "), T" + fmt(m.tier, 0);
      }],
    ];
    METRICS.forEach(function (metric) {
      rows.push([metric[1] + (metric[2] === "up" ? " ↑" : " ↓"), function (m) {
        var low = m[metric[0] + "_ci_low"], high = m[metric[0] + "_ci_high"];
        return fmt(m[metric[0]], metric[3]) + (low !== undefined && low !== null ? " [" + fmt(low, metric[3]) + ", " + fmt(high, metric[3]) + "]" : "");
      }]);
    });
    rows.push(["seed SD of Dice", function (m) { return m.seeds ? fmt(m.seed_dice_sd, 4) + " (" + m.seeds + " seeds)" : "one seed"; }]);
    rows.push(["parameters (M)", function (m) { return fmt(m.params_m, 1); }]);
    rows.push(["inference images/s", function (m) { return fmt(m.infer_images_per_s, 0); }]);
    rows.forEach(function (row) {
      var tr = body.insertRow();
      tr.appendChild(el("th", row[0]));
      models.forEach(function (m) { tr.appendChild(el("td", row[1](m))); });
    });
    return table;
  }

  function pairedSection(models) {
    var box = el("div", null, "compare-paired");
    var first = models[0];
    models.slice(1).forEach(function (other) {
      box.appendChild(el("h3", other.id + " minus " + first.id));
      if (other.experiment !== first.experiment) {
        box.appendChild(el("p", "Different experiments: their test targets differ, so per-volume differences are not paired."));
        return;
      }
      var volumes = {};
      first.volumes.forEach(function (v) { volumes[v.volume] = v; });
      var shared = other.volumes.filter(function (v) { return volumes[v.volume]; });
      if (!shared.length) {
        box.appendChild(el("p", "No test volumes with scores for both (a model that failed has none)."));
        return;
      }
      var table = el("table", null, "compare-table paired-table");
      var head = table.createTHead().insertRow();
      ["metric", "mean difference", Math.round(confidence * 100) + "% t interval over the volumes", "second better on"].forEach(function (h) { head.appendChild(el("th", h)); });
      var body = table.createTBody();
      [["dice", "Dice", 1, 4], ["nsd", "NSD", 1, 4], ["hd95", "HD95 (mm)", -1, 2]].forEach(function (metric) {
        var differences = shared.map(function (v) { return v[metric[0]] - volumes[v.volume][metric[0]]; });
        var result = pairedInterval(differences);
        var better = differences.filter(function (d) { return metric[2] * d > 0; }).length;
        var tr = body.insertRow();
        tr.appendChild(el("th", metric[1] + (metric[2] > 0 ? " ↑" : " ↓")));
        tr.appendChild(el("td", signed(result.mean, metric[3])));
        if (result.low === null) {
          tr.appendChild(el("td", "none: fewer than " + MIN_PAIRS + " volumes"));
        } else {
          var separable = result.low > 0 || result.high < 0;
          tr.appendChild(el("td", "[" + signed(result.low, metric[3]) + ", " + signed(result.high, metric[3]) + "]" + (separable ? "" : " (includes 0: not separable)")));
        }
        tr.appendChild(el("td", better + " of " + differences.length + " volumes"));
      });
      box.appendChild(table);
      var detail = el("table", null, "compare-table per-volume");
      var dh = detail.createTHead().insertRow();
      ["volume", "Dice " + first.id, "Dice " + other.id, "difference"].forEach(function (h) { dh.appendChild(el("th", h)); });
      var db = detail.createTBody();
      shared.forEach(function (v) {
        var tr = db.insertRow();
        tr.appendChild(el("td", v.volume));
        tr.appendChild(el("td", fmt(volumes[v.volume].dice, 4)));
        tr.appendChild(el("td", fmt(v.dice, 4)));
        tr.appendChild(el("td", signed(v.dice - volumes[v.volume].dice, 4)));
      });
      var more = el("details");
      more.appendChild(el("summary", "Per volume"));
      more.appendChild(detail);
      box.appendChild(more);
    });
    return box;
  }

  function masks(models) {
    var box = el("div", null, "compare-masks");
    models.forEach(function (m) {
      var figure = el("figure");
      if (m.mask) {
        var image = el("img");
        image.src = site.root + m.mask;
        image.alt = "Predicted masks of " + m.id;
        image.loading = "lazy";
        figure.appendChild(image);
      } else {
        figure.appendChild(el("p", "No picture (the model failed)."));
      }
      figure.appendChild(el("figcaption", m.id));
      box.appendChild(figure);
    });
    return box;
  }

  // The prediction of each model on the first model's viewer volume, side by side, slice positions linked.
  function viewers(models) {
    var volume = (models[0].viewer || [])[0];
    var box = el("div", null, "compare-viewers");
    if (!volume) {
      box.appendChild(el("p", "No volume to show (the first model has no viewer data)."));
      return box;
    }
    var boxes = [];
    models.forEach(function (m) {
      var entry = (m.viewer || []).filter(function (v) { return v.ct === volume.ct; })[0];
      var cell = el("div", null, "compare-viewer");
      cell.appendChild(el("p", m.id, "compare-viewer-title"));
      if (!entry) {
        cell.appendChild(el("p", "Not shown on volume " + volume.volume + " (another experiment, or no prediction)."));
      } else {
        var viewer = el("div", null, "viewer");
        viewer.dataset.ct = entry.ct;
        viewer.dataset.labels = entry.labels;
        viewer.dataset.volume = entry.volume;
        viewer.dataset.colours = root.dataset.colours;
        cell.appendChild(viewer);
        boxes.push(viewer);
      }
      box.appendChild(cell);
    });
    function mountAll() {
      site.load("viewer.js").then(function () {
        return Promise.all(boxes.map(function (viewer) { return siteViewer.mount(viewer); }));
      }).then(function (mounted) { siteViewer.link(mounted); });
    }
    if (boxes.length && "IntersectionObserver" in window) {
      var observer = new IntersectionObserver(function (entries) {
        if (entries.some(function (entry) { return entry.isIntersecting; })) {
          observer.disconnect();
          mountAll();
        }
      }, { rootMargin: "200px" });
      observer.observe(box);
    } else if (boxes.length) {
      mountAll();
    }
    return box;
  }

  function lossChart(models) {
    var spec = JSON.parse(JSON.stringify(template));
    var rows = [];
    models.forEach(function (m) { rows = rows.concat(m.history); });
    spec.data.forEach(function (entry) { if (entry.name === "history") entry.values = rows; });
    var target = el("div", null, "vega-chart");
    target.id = "compare-loss";
    setTimeout(function () { site.renderChart(target, spec); }, 0);
    return target;
  }

  var index = [], generation = 0;
  function render() {
    var asked = selected(), current = ++generation;
    var known = {};
    index.forEach(function (m) { known[m.id] = true; });
    var ids = asked.filter(function (id) { return known[id]; });
    var unknown = asked.filter(function (id) { return !known[id]; });
    root.textContent = "";
    root.appendChild(picker(index, ids));
    if (unknown.length) {
      root.appendChild(el("p", "Not models of this site, skipped: " + unknown.join(", ") + ".", "compare-unknown"));
    }
    if (ids.length === 0) {
      root.appendChild(el("p", "Choose models above, or tick them on a leaderboard."));
      return;
    }
    var status = root.appendChild(el("p", "Loading " + ids.length + " models…", "compare-status"));
    Promise.all(ids.map(loadModel)).then(function (models) {
      if (current !== generation) return;  // a newer choice is being drawn
      status.remove();
      root.appendChild(el("h2", "Metrics"));
      root.appendChild(metricsTable(models));
      if (models.length > 1) {
        root.appendChild(el("h2", "Paired differences per test volume"));
        root.appendChild(pairedSection(models));
      } else {
        root.appendChild(el("p", "Add a second model to see paired differences."));
      }
      // The chart first: the viewer's code and volumes (megabytes) load when the viewers come into view.
      root.appendChild(el("h2", "Loss curves"));
      root.appendChild(lossChart(models));
      root.appendChild(el("h2", "In 3-D"));
      root.appendChild(viewers(models));
      root.appendChild(el("h2", "Predicted masks"));
      root.appendChild(masks(models));
      document.dispatchEvent(new CustomEvent("compare-rendered", { detail: { models: models } }));
    }).catch(function (error) {
      status.textContent = "Could not load the models: " + error.message;
      console.error(error);
    });
  }

  site.loadData("data/models.js").then(function () {
    index = (window.benchmarkIndex || {}).models || [];
    render();
  });
  window.addEventListener("popstate", render);
  window.addEventListener("hashchange", render);
})();
