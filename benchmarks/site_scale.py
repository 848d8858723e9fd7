"""Time the website at the paper's scale: 600 models, from a made-up results fixture (clearly labelled).

    python -m benchmarks.site_scale [--keep DIR]

Writes a 600-model results/ and figures/ fixture (benchmarks.results_fixture: random numbers, data source
"fixture"), then times the site stage's two steps on it: generating the Markdown and ``mkdocs build``.
Targets (issue 4): total under 60 s on a 2-core machine, a model page under 100 KB before images, the
leaderboard's first render in headless Chromium under 1 s (measured when playwright and chromium are there). The last
line is ``600 models: generate Xs, mkdocs Ys, total Zs, public N MB``.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.results_fixture import write_results_fixture
from pipeline.cells import ENCODERS
from pipeline.site_build import Provenance, build, generate
from pipeline.site_data import load_results


def first_render(page: Path) -> float | None:
    """Seconds from navigation until the leaderboard's chart has drawn and its table is sortable, best of 3."""
    try:
        from playwright.sync_api import sync_playwright

        from benchmarks.browser import launch
    except ImportError:
        return None
    times = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for _ in range(3):
            tab = browser.new_page()
            started = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_selector(".vega-ok svg, .vega-ok canvas", timeout=30_000)
            tab.wait_for_selector("table[data-sortable]", timeout=30_000)
            times.append(time.perf_counter() - started)
            tab.close()
        browser.close()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the fixture and the built site in this folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="site-scale-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        results_dir, figures_dir = write_results_fixture(root, encoders=ENCODERS, epochs=200)
        print(f"fixture: {time.perf_counter() - started:.1f}s (not counted)")
        started = time.perf_counter()
        results = load_results(results_dir, figures_dir)
        provenance = Provenance("fixture", {"data": "fixture", "code": "fixture", "train": {}}, "", root)
        docs, public = root / "docs", root / "public"
        shutil.rmtree(docs, ignore_errors=True)
        pages = generate(results, provenance, docs)
        generated = time.perf_counter() - started
        build(docs, public)
        total = time.perf_counter() - started
        model_pages = sorted((public / "models").glob("*-*.html"), key=lambda p: p.stat().st_size)
        leaderboard = public / "leaderboard" / "lung.html"
        size = sum(p.stat().st_size for p in public.rglob("*") if p.is_file()) / 1e6
        median = model_pages[len(model_pages) // 2]
        print(
            f"pages generated: {pages}; model page HTML: median {median.stat().st_size / 1e3:.0f} KB, "
            f"largest {model_pages[-1].stat().st_size / 1e3:.0f} KB ({model_pages[-1].name}); "
            f"leaderboard page {leaderboard.stat().st_size / 1e3:.0f} KB"
        )
        render = first_render(public / "leaderboard" / "lung.html")
        if render is not None:
            print(f"leaderboard first render in headless Chromium ({len(results.models)} models): {render:.2f}s")
        print(
            f"{len(results.models)} models: generate {generated:.1f}s, mkdocs {total - generated:.1f}s, "
            f"total {total:.1f}s, public {size:.0f} MB"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
