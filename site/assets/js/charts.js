// Render every chart of the page: each is a Vega-Lite spec in a <script type="application/json"> next to an
// empty div. Runs once per page load (no instant navigation: it would break file://).
(function () {
  function render() {
    document.querySelectorAll("script.vega-spec").forEach(function (element) {
      var target = document.getElementById(element.dataset.target);
      if (!target || target.dataset.rendered) return;
      target.dataset.rendered = "1";
      vegaEmbed(target, JSON.parse(element.textContent), {
        renderer: "svg",  // accessible (each mark has an aria-label) and crisp when zoomed
        // The editor action needs the internet; exporting PNG/SVG works offline.
        actions: { export: true, source: false, compiled: false, editor: false },
      })
        .then(function () { target.classList.add("vega-ok"); })
        .catch(function (error) {
          target.classList.add("vega-error");
          target.textContent = "This chart failed to render: " + error;
          console.error(error);
        });
    });
  }
  if (typeof document$ !== "undefined") document$.subscribe(render);
  else if (document.readyState !== "loading") render();
  else document.addEventListener("DOMContentLoaded", render);
})();
