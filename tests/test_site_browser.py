"""The built site in a real browser: Debian's chromium driven by Playwright, over loopback HTTP and file://.

The site is built once from the 24-model results fixture. Any request to a host other than 127.0.0.1 is
aborted and fails the test that made it; so does any console error.
"""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from benchmarks.browser import launch
from pipeline.site_build import build, generate
from pipeline.site_data import load_results
from tests.conftest import ROOT
from tests.test_site import FIXED_PROVENANCE, small_fixture

CHART_PAGES = (
    "leaderboard/lung.html",
    "leaderboard/lesion_a.html",
    "leaderboard/lesion_b.html",
    "models/lung-unet-resnet18-imagenet.html",
    "compare/architectures.html",
    "compare/encoders.html",
    "compare/initialisation.html",
    "compare/lesions.html",
    "compare/training.html",
    "compare/figures.html",
)
POINTS = """(selector) => Array.from(document.querySelectorAll(selector + ' g.mark-symbol path'))
    .map(e => e.__data__ && e.__data__.datum).filter(d => d && d.id && d.url)"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser-site")
    results = load_results(*small_fixture(root))
    generate(results, FIXED_PROVENANCE, root / "docs")
    build(root / "docs", root / "public", ROOT / "mkdocs.yml")
    return root / "public"


@pytest.fixture(scope="module")
def server(site):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


class Tab:
    """A page that records console errors and refuses every request off the machine."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _guard(self, route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("file", "data", "blob") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def check_clean(self) -> None:
        assert self.outside == [], f"requests left the machine: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture(params=["http", "file"])
def base(request, server, site) -> str:
    return server if request.param == "http" else site.as_uri()


@pytest.fixture
def tab(browser):
    tab = Tab(browser)
    yield tab
    tab.context.close()


@pytest.mark.parametrize("page", CHART_PAGES)
def test_every_chart_renders(tab, base, page):
    tab.open(f"{base}/{page}")
    charts = tab.page.locator(".vega-chart")
    count = charts.count()
    assert count >= 1
    tab.page.wait_for_function(f"document.querySelectorAll('.vega-ok, .vega-error').length == {count}")
    assert tab.page.locator(".vega-error").count() == 0
    assert tab.page.locator(".vega-ok svg.marks").count() == count
    tab.check_clean()


def test_home_and_a_failed_model_page_load_cleanly(tab, base):
    for page in ("index.html", "models/lung-fpn-resnet18-random.html", "methods.html", "get-a-model.html"):
        tab.open(f"{base}/{page}")
        assert tab.page.locator("h1").count() == 1
    tab.check_clean()


def _leaderboard(tab, base):
    tab.open(f"{base}/leaderboard/lung.html")
    tab.page.wait_for_selector("#leaderboard-chart.vega-ok")
    return lambda: tab.page.evaluate(POINTS, "#leaderboard-chart")


def test_experiment_selector_changes_the_points(tab, base):
    points = _leaderboard(tab, base)
    assert {p["experiment"] for p in points()} == {"lung"}
    tab.page.select_option("#leaderboard-chart select[name=experiment]", "lesion_b")
    tab.page.wait_for_function(f"({POINTS})('#leaderboard-chart').every(d => d.experiment == 'lesion_b')")
    assert {p["id"].split("-")[0] for p in points()} == {"lesion_b"}
    tab.check_clean()


def test_architecture_and_initialisation_filters_hide_points(tab, base):
    points = _leaderboard(tab, base)
    before = points()
    assert {p["architecture"] for p in before} == {"unet", "fpn"}
    tab.page.uncheck("#leaderboard-chart input[name=show_unet]")
    tab.page.wait_for_function(f"({POINTS})('#leaderboard-chart').every(d => d.architecture == 'fpn')")
    after = points()
    assert 0 < len(after) < len(before)
    tab.page.select_option("#leaderboard-chart select[name=initialisation]", "imagenet")
    tab.page.wait_for_function(f"({POINTS})('#leaderboard-chart').every(d => d.encoder_weights == 'imagenet')")
    tab.check_clean()


def test_clicking_a_point_opens_its_model_page(tab, base):
    _leaderboard(tab, base)
    target = tab.page.evaluate("""() => {
        const path = Array.from(document.querySelectorAll('#leaderboard-chart g.mark-symbol path'))
            .find(e => e.__data__ && e.__data__.datum && e.__data__.datum.url);
        path.scrollIntoView({block: "center"});
        const box = path.getBoundingClientRect();
        return {id: path.__data__.datum.id, x: box.x + box.width / 2, y: box.y + box.height / 2};
    }""")
    tab.page.mouse.click(target["x"], target["y"])
    tab.page.wait_for_url(f"**/models/{target['id']}.html")
    assert tab.page.locator("h1").inner_text().rstrip("¶ \n") == target["id"]  # ¶: the permalink
    tab.check_clean()


def _column(tab, header: str) -> list[str]:
    return tab.page.evaluate(
        """(header) => {
            const table = document.querySelector('article table[data-sortable]');
            const index = Array.from(table.tHead.rows[0].cells).findIndex(c => c.textContent.trim() == header);
            return Array.from(table.tBodies[0].rows).map(r => r.cells[index].textContent.trim());
        }""",
        header,
    )


def test_table_headers_sort_and_the_filter_box_filters(tab, base):
    tab.open(f"{base}/leaderboard/lesion_a.html")
    tab.page.wait_for_selector("article table[data-sortable]")
    tab.page.click("article table[data-sortable] th:text-is('params (M)')")
    values = [float(v) for v in _column(tab, "params (M)")]
    assert values == sorted(values) or values == sorted(values, reverse=True)
    tab.page.click("article table[data-sortable] th:text-is('params (M)')")
    again = [float(v) for v in _column(tab, "params (M)")]
    assert again == list(reversed(values))
    tab.page.fill("input.table-filter", "unet imagenet")
    visible = tab.page.locator("article table[data-sortable] tbody tr:visible")
    assert visible.count() == 2
    assert all("unet" in text and "imagenet" in text for text in visible.all_inner_texts())
    tab.check_clean()


def test_brushing_changes_the_linked_bars(tab, base):
    _leaderboard(tab, base)
    # The bar chart's marks: the rect groups other than the brush's own.
    bars = (
        "() => Array.from(document.querySelectorAll('#leaderboard-chart g.mark-rect:not([class*=brush]) path')).length"
    )
    assert tab.page.evaluate(bars) == 2
    box = tab.page.locator("#leaderboard-chart svg.marks").bounding_box()
    # A tiny brush in the empty top-left corner of the first plot selects no model: the bars go.
    tab.page.mouse.move(box["x"] + 60, box["y"] + 40)
    tab.page.mouse.down()
    tab.page.mouse.move(box["x"] + 70, box["y"] + 45)
    tab.page.mouse.up()
    tab.page.wait_for_function(f"({bars})() < 2")
    tab.check_clean()
