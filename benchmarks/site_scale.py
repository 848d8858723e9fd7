"""Time and weigh the website at the paper's scale: 600 models, from a made-up results fixture (clearly labelled).

    python -m benchmarks.site_scale [--keep DIR] [--no-browser]

Writes a 600-model results/ and figures/ fixture (benchmarks.results_fixture: random numbers, data source
"fixture"), with the volume viewer's data at the paper's geometry (one CT and 600 label volumes at 256 x 256
x 92, as the figures stage makes them from 630 x 630 scans), then times the site stage's two steps on it:
generating the Markdown and ``mkdocs build``. In headless Chromium over a loopback HTTP server that gzips text as
static hosts do, with an empty cache per page, it weighs pages (every byte the page loads, as transferred and
as unpacked) and times the first chart and the viewer's first render. Targets: the whole build under 60 s; a
page without charts under 300 KB; a leaderboard under 900 KB (both as transferred: Material's own CSS and
JavaScript alone unpack to 252 KB); the first chart under 0.5 s; the viewer's data under 150 MB for the site.
It also weighs the search: Material's index, which every page loads, and the model index the search box loads
the first time it is used; and times the compare view's first chart (target 1 s). The last line sums it up.
"""

import argparse
import gzip
import json
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.results_fixture import write_results_fixture
from pipeline.core.profiles import paper_grid
from pipeline.site.build import Provenance, build, build_settings, generate
from pipeline.site.data import load_results

VIEWER = (256, 92)  # the viewer's in-plane size (viewer.size) and a test volume's mean slice count (829 / 9)


def _megabytes(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# Stamps, by the page's own clock (milliseconds from the start of navigation), when a selector first matches.
_MARK = """(selector) => new MutationObserver((changes, observer) => {
    if (document.querySelector(selector)) { window.__rendered = performance.now(); observer.disconnect(); }
}).observe(document, {subtree: true, childList: true, attributes: true})"""


def _first_render(browser, url: str, selector: str, scroll_to: str | None = None) -> float:
    """Seconds from navigation start to ``selector`` first matching, empty cache; Playwright's own round trips
    (waiting for the load event, polling) are not counted."""
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(f"({_MARK})({json.dumps(selector)})")
    page.goto(url, wait_until="commit")
    if scroll_to:  # it loads when it comes into view
        page.locator(scroll_to).first.scroll_into_view_if_needed()
    page.wait_for_selector(selector, timeout=120_000)
    seconds = page.evaluate("window.__rendered") / 1e3
    context.close()
    return seconds


def browser_figures(public: Path, pages: dict[str, str], model_page: str, compare: str) -> dict:
    """Page weights (empty cache) and first-render times, in Chromium over loopback HTTP.

    The server gzips text as any static host does, so a page's weight is what travels ("transferred"); what the
    browser unpacks ("raw") is printed beside it. The charts are timed in a plain headless Chromium, the viewer
    in one with software WebGL (which slows everything else down).
    """
    from playwright.sync_api import sync_playwright

    from benchmarks.browser import launch, serve

    figures: dict = {}
    with sync_playwright() as playwright, serve(public, compress=True) as base:
        browser = launch(playwright)
        for name, path in pages.items():
            context = browser.new_context()
            page = context.new_page()
            loaded: list[tuple[int, int]] = []

            def weigh(request, loaded=loaded) -> None:
                response = request.response()
                loaded.append((request.sizes()["responseBodySize"], len(response.body()) if response else 0))

            page.on("requestfinished", weigh)
            page.goto(f"{base}/{path}")
            page.wait_for_load_state("networkidle")
            figures[f"weight {name}"] = sum(sent for sent, _ in loaded) / 1e3
            figures[f"raw {name}"] = sum(raw for _, raw in loaded) / 1e3
            context.close()
        times = []
        for _ in range(3):  # the leaderboard's first chart, best of 3
            times.append(_first_render(browser, f"{base}/{pages['leaderboard']}", ".vega-ok svg"))
        figures["first chart"] = min(times)
        figures["compare first chart"] = min(_first_render(browser, f"{base}/{compare}", "#compare-loss.vega-ok svg")
                                             for _ in range(3))  # fmt: skip
        browser.close()
        browser = launch(playwright, webgl=True)
        figures["viewer first render"] = _first_render(browser, f"{base}/{model_page}", ".viewer.viewer-ok",
                                                       scroll_to=".viewer")  # fmt: skip
        browser.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the fixture and the built site in this folder")
    parser.add_argument("--no-browser", action="store_true", help="skip the measurements in Chromium")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="site-scale-")) if args.keep is None else args.keep
    shutil.rmtree(root, ignore_errors=True)  # a kept folder of an earlier run is written again
    root.mkdir(parents=True)
    try:
        started = time.perf_counter()
        results_dir, figures_dir = write_results_fixture(
            root, encoders=paper_grid().encoders, epochs=200, viewer=VIEWER
        )
        print(f"fixture: {time.perf_counter() - started:.1f}s (not counted)")
        started = time.perf_counter()
        results = load_results(results_dir, figures_dir)
        provenance = Provenance("fixture", {"data": "fixture", "code": "fixture", "train": {}}, "", root, "",
                                "fixture")  # fmt: skip
        docs, public = root / "docs", root / "public"
        shutil.rmtree(docs, ignore_errors=True)
        pages = generate(results, provenance, docs)
        generated = time.perf_counter() - started
        build(docs, public, experiments=results.experiments, extra=build_settings(results, provenance))
        total = time.perf_counter() - started
        model_pages = sorted((public / "models").glob("*-*.html"), key=lambda p: p.stat().st_size)
        median = model_pages[len(model_pages) // 2]
        viewer = _megabytes(public / "viewer")
        print(f"pages generated: {pages}; model page HTML: median {median.stat().st_size / 1e3:.0f} KB, largest "
              f"{model_pages[-1].stat().st_size / 1e3:.0f} KB; leaderboard page HTML "
              f"{(public / 'leaderboard' / 'lung.html').stat().st_size / 1e3:.0f} KB")  # fmt: skip
        files = len(list((public / "viewer").glob("*.js")))
        print(f"viewer data: {viewer:.0f} MB for {len(results.models)} models ({files} files, one CT shared by all)")
        # The search: Material's index (every page loads it) and the model index the search box loads on first use.
        search = {
            "site search index": public / "search" / "search_index.js",
            "model index": public / "data" / "models.js",
        }
        sizes = {
            name: (path.stat().st_size / 1e3, len(gzip.compress(path.read_bytes())) / 1e3)
            for name, path in search.items()
        }
        for name, (raw, packed) in sizes.items():
            print(f"{name}: {raw:.0f} KB raw, {packed:.0f} KB gzipped")
        summary = (f"{len(results.models)} models: generate {generated:.1f}s, mkdocs {total - generated:.1f}s, "
                   f"total {total:.1f}s (target 60), public {_megabytes(public):.0f} MB, viewer {viewer:.0f} MB "
                   f"(target 150), search indexes {sizes['site search index'][1]:.0f} KB + models "
                   f"{sizes['model index'][1]:.0f} KB gzipped")  # fmt: skip
        if not args.no_browser:
            model = next(p for p in model_pages if "lung-unet-resnet18" in p.name)
            chosen = {"leaderboard": "leaderboard/lung.html", "page without charts": "methods.html",
                      "model page": f"models/{model.name}", "home": "index.html"}  # fmt: skip
            ids = [p.stem for p in model_pages if p.stem.startswith("lung-unet-")][:2]
            figures = browser_figures(public, chosen, f"models/{model.name}", f"compare.html#models={','.join(ids)}")
            for name in chosen:
                print(f"weight {name}: {figures[f'weight {name}']:.0f} KB transferred, "
                      f"{figures[f'raw {name}']:.0f} KB raw")  # fmt: skip
            print(f"first chart: {figures['first chart']:.2f} s; compare view's first chart: "
                  f"{figures['compare first chart']:.2f} s; viewer first render: "
                  f"{figures['viewer first render']:.1f} s")  # fmt: skip
            summary += (f"; transferred: page without charts {figures['weight page without charts']:.0f} KB "
                        f"(target 300), leaderboard {figures['weight leaderboard']:.0f} KB (target 900); first chart "
                        f"{figures['first chart']:.2f}s (target 0.5), compare's {figures['compare first chart']:.2f}s "
                        f"(target 1), viewer first render "
                        f"{figures['viewer first render']:.1f}s")  # fmt: skip
        print(summary)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
