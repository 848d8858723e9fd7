"""Screenshots of the built site as a reader sees it: home, a leaderboard, a model page, its volume viewer and the
compare view, at 1440 px (a laptop) and 390 px (a phone), full page, from public/ over a loopback HTTP server
(WebGL2 rendered in software, so the viewer draws).

    python -m tools.screenshots                  # reads public/, writes screenshots/ (make screenshots)
    python -m tools.screenshots --site DIR --out DIR

The pages are chosen from the site itself: the first leaderboard, its first model, its first submission (if any)
and the compare view of its first two models; methods, the Submit and Cite pages, and try.html with its panel
after a run on the build's test volume. Nothing leaves the machine: requests to other hosts are refused and listed.
"""

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.browser import launch, serve

WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


def pages(site: Path) -> dict[str, str]:
    """Name -> path of the pages to photograph, found in the built site."""
    boards = sorted((site / "leaderboard").glob("*.html"), key=lambda p: (p.stem != "lung", p.stem))
    if not boards:
        raise SystemExit(f"error: {site}: no leaderboard page; build the site first (make site)")
    board = boards[0]
    ids = re.findall(r'data-id="([^"]+)" data-status="ok" data-source="grid"', board.read_text())
    outside = re.findall(r'data-id="([^"]+)" data-status="ok" data-source="external"', board.read_text())
    chosen = {"home": "index.html", "leaderboard": f"leaderboard/{board.name}", "methods": "methods.html",
              "submit": "submit.html", "try": "try.html", "cite": "cite.html"}  # fmt: skip
    if ids:
        chosen["model"] = f"models/{ids[0]}.html"
        chosen["compare"] = f"compare.html#models={','.join(ids[:2])}"
    if outside:
        chosen["submission"] = f"models/{outside[0]}.html"
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path("public"))
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args()
    if not (args.site / "index.html").exists():
        raise SystemExit(f"error: {args.site}: no built site; run `make site` (or `make demo`) first")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []

    def guard(route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    written = []
    with sync_playwright() as playwright, serve(args.site) as base:
        browser = launch(playwright, webgl=True)
        for name, path in pages(args.site).items():
            for label, (width, height) in WIDTHS.items():
                context = browser.new_context(viewport={"width": width, "height": height})
                context.route("**/*", guard)
                page = context.new_page()
                page.goto(f"{base}/{path}")
                page.wait_for_load_state("networkidle")
                if page.locator(".viewer").count():  # it loads when it comes into view
                    page.locator(".viewer").first.scroll_into_view_if_needed()
                    page.wait_for_selector(".viewer.viewer-ok, .viewer-fallback-shown, .viewer-error", timeout=60_000)
                    page.evaluate("window.scrollTo(0, 0)")
                page.wait_for_timeout(800)  # charts draw after load
                target = args.out / f"{name}-{label}.png"
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
                if name == "try" and page.locator("#try-model .try-test").count():
                    # the panel after a run on the build's test volume: progress done, download, the mask shown
                    page.click("#try-model .try-test")
                    page.wait_for_function("() => ['done', 'error'].includes(document.getElementById('try-model')"
                                           ".dataset.state)", timeout=600_000)  # fmt: skip
                    page.wait_for_timeout(1500)  # NiiVue draws
                    page.locator("#try-model").screenshot(path=str(args.out / f"try-panel-{label}.png"))
                    written.append(args.out / f"try-panel-{label}.png")
                if name == "model" and page.locator(".viewer").count():
                    viewer = page.locator(".viewer").first
                    viewer.scroll_into_view_if_needed()
                    viewer.screenshot(path=str(args.out / f"viewer-{label}.png"))
                    written.append(args.out / f"viewer-{label}.png")
                context.close()
        browser.close()
    for path in written:
        print(path)
    if outside:
        print(f"error: requests left the machine: {outside}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
