"""The built site in a real browser: Debian's chromium driven by Playwright, over loopback HTTP and file://.

The site is built once from the 24-model results fixture. Any request to a host other than 127.0.0.1 is
aborted and fails the test that made it; so does any console error. Every test runs over HTTP; those whose pages
load their scripts and data, read or write the address, or follow links run from file:// too (``base``; and the
charts of one page of each folder), where those are what differs. What only draws, filters or lays out a loaded
page runs once.
"""

import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from benchmarks.browser import launch, serve

CHART_PAGES = (
    "index.html",
    "leaderboard/lung.html",
    "leaderboard/lesion_a.html",
    "leaderboard/lesion_b.html",
    "models/lung-unet-resnet18-imagenet.html",
    "models/lung-fpn-resnet18-imagenet.html",  # did not learn: its curves are flat, its charts still draw
    "compare/rankings.html",
    "compare/architectures.html",
    "compare/encoders.html",
    "compare/initialisation.html",
    "compare/lesions.html",
    "compare/training.html",
    "compare/figures.html",
)
# From file:// the pages load the same scripts by the same relative addresses: one chart page of each folder
CHART_PAGES_FROM_A_FOLDER = ("index.html", "leaderboard/lung.html", "models/lung-unet-resnet18-imagenet.html",
                             "compare/training.html")  # fmt: skip
PAGES_WITHOUT_CHARTS = ("methods.html", "models/index.html", "get-a-model.html", "cite.html", "reference.html",
                        "models/lung-fpn-resnet18-random.html")  # fmt: skip
POINTS = """(selector) => Array.from(document.querySelectorAll(selector + ' g.mark-symbol path'))
    .map(e => e.__data__ && e.__data__.datum).filter(d => d && d.id && d.url)"""

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(fixture_site) -> Path:
    return fixture_site


@pytest.fixture(scope="module")
def server(site):
    with serve(site) as base:
        yield base


@pytest.fixture(scope="module")
def playwright():
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = launch(playwright)
    yield chromium
    chromium.close()


class Tab:
    """A page that records console errors and warnings and refuses every request off the machine."""

    def __init__(self, browser, width: int = 1440, height: int = 1000):
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.requested: list[str] = []
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message) -> None:
        # Chromium's software GL driver notes its own slow paths ("GPU stall due to ReadPixels"), and Chromium says
        # when a page's WebGPU request finds no adapter on this machine ("No available adapters."): not the page's.
        machine = ("GL Driver Message", "No available adapters.")
        if message.type in ("error", "warning") and not any(note in message.text for note in machine):
            self.errors.append(message.text)

    def _guard(self, route) -> None:
        url = urlsplit(route.request.url)
        self.requested.append(route.request.url)
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


def _charts_render(tab, address: str) -> None:
    """Open a chart page and wait for every chart on it to be drawn; none may fail."""
    tab.open(address)
    count = tab.page.locator(".vega-chart").count()
    assert count >= 1, address
    tab.page.wait_for_function(f"document.querySelectorAll('.vega-ok, .vega-error').length == {count}")
    assert tab.page.locator(".vega-error").count() == 0, address
    assert tab.page.locator(".vega-ok svg.marks").count() == count, address


@pytest.mark.parametrize("page", CHART_PAGES_FROM_A_FOLDER)
def test_charts_render_from_a_folder(tab, site, page):
    # over HTTP every chart page is drawn by the next test, which then works its controls
    _charts_render(tab, f"{site.as_uri()}/{page}")
    tab.check_clean()


def test_pages_without_charts_load_no_chart_code(tab, base):
    for page in PAGES_WITHOUT_CHARTS:
        tab.requested.clear()
        tab.open(f"{base}/{page}")
        assert tab.page.locator("h1").count() == 1
        assert not [url for url in tab.requested if "vega" in url], page
    tab.check_clean()


def _leaderboard(tab, base, page="lung", hash_=""):
    tab.open(f"{base}/leaderboard/{page}.html{hash_}")
    tab.page.wait_for_selector("#leaderboard-chart.vega-ok")
    tab.page.wait_for_selector(".board-toolbar")
    return lambda: tab.page.evaluate(POINTS, "#leaderboard-chart")


def test_every_chart_renders_and_each_control_changes_only_what_it_names_never_emptying_it(tab, server):
    for page in CHART_PAGES:
        _charts_render(tab, f"{server}/{page}")
        controls = tab.page.locator(".vega-bindings input, .vega-bindings select")  # what the specs bind
        for index in range(controls.count()):
            control = controls.nth(index)
            chart = control.locator("xpath=ancestor::div[contains(@class, 'vega-chart')]")
            # Once the view's dataflow has run again (its render signal), count what it drew.
            marks = """(el) => el.vegaView.runAsync().then(() =>
                el.querySelectorAll('g.mark-symbol path, g.mark-rect path, g.mark-line path').length)"""
            if control.evaluate("el => el.tagName") == "SELECT":
                for option in control.locator("option").all_inner_texts():
                    control.select_option(option)
                    assert chart.evaluate(marks) > 0, (page, option)
            else:
                control.uncheck()
                assert chart.evaluate(marks) > 0, page
                control.check()
    tab.check_clean()


def test_architecture_and_initialisation_filters_hide_points(tab, server):
    points = _leaderboard(tab, server)
    before = points()
    # The fixture's submission is drawn as "submission", whatever its architecture.
    assert {p["architecture"] for p in before} == {"unet", "fpn", "submission"}
    assert {p["experiment"] for p in before} == {"lung"}
    assert tab.page.locator("#leaderboard-chart select[name=experiment]").count() == 0  # the page's experiment only
    tab.page.uncheck("#leaderboard-chart input[name=show_unet]")
    tab.page.wait_for_function(f"({POINTS})('#leaderboard-chart').every(d => d.architecture != 'unet')")
    assert 0 < len(points()) < len(before)
    tab.page.select_option("#leaderboard-chart select[name=initialisation]", "imagenet")
    # (a submission has no initialisation of the grid's: it stays)
    tab.page.wait_for_function(f"({POINTS})('#leaderboard-chart').every(d => d.encoder_weights != 'random')")
    assert points()
    tab.check_clean()


def test_the_pareto_front_is_the_models_no_cheaper_model_beats_and_follows_the_filters(tab, server):
    _leaderboard(tab, server, "lesion_a")
    drawn = """() => {
        const chart = document.querySelector('#leaderboard-chart');
        const points = Array.from(chart.querySelectorAll('g.mark-symbol path'))
            .map(e => e.__data__ && e.__data__.datum).filter(d => d && d.id && d.url);  // not the legend's
        const front = chart.querySelector('g.mark-line path').__data__.mark.items.map(item => item.datum.id);
        return [points, front];
    }"""
    for step in ("every model", "unet only"):
        points, front = tab.page.evaluate(drawn)
        models = {point["id"]: point for point in points}  # both scatters draw the same models
        others = list(models.values())
        expected = [i for i, m in models.items() if not any(o["params_m"] < m["params_m"] and o["dice"] > m["dice"]
                                                              for o in others)]  # fmt: skip
        assert sorted(front) == sorted(expected), step
        tab.page.uncheck("#leaderboard-chart input[name=show_fpn]")
        tab.page.wait_for_function(f"({POINTS})('#leaderboard-chart').every(d => d.architecture == 'unet')")
    tab.check_clean()


def _click_mark(tab, selector: str) -> str:
    """Click, with the mouse, the first mark under ``selector`` that links to a model; wait for that model's
    page and return the model's id."""
    target = tab.page.evaluate(
        """(selector) => {
        const mark = Array.from(document.querySelectorAll(selector))
            .find(e => e.__data__ && e.__data__.datum && e.__data__.datum.url);
        mark.scrollIntoView({block: "center"});
        const box = mark.getBoundingClientRect();
        return {id: mark.__data__.datum.id, x: box.x + box.width / 2, y: box.y + box.height / 2};
    }""",
        selector,
    )
    tab.page.mouse.click(target["x"], target["y"])
    tab.page.wait_for_url(f"**/models/{target['id']}.html")
    return target["id"]


def test_clicking_a_point_opens_its_model_page(tab, base):
    _leaderboard(tab, base)
    model_id = _click_mark(tab, "#leaderboard-chart g.mark-symbol path")
    assert tab.page.locator("h1").inner_text().rstrip("¶ \n") == model_id  # ¶: the permalink
    tab.check_clean()


def test_a_heat_map_number_opens_its_model_like_the_rest_of_its_cell(tab, server):
    tab.open(f"{server}/compare/encoders.html")
    tab.page.wait_for_selector("#heatmap-lung.vega-ok")
    _click_mark(tab, "#heatmap-lung g.mark-text text")
    tab.check_clean()


def _column(tab, key: str) -> list[str]:
    return tab.page.evaluate(
        """(key) => {
            const table = document.getElementById('leaderboard');
            const index = Array.from(table.tHead.rows[0].cells).findIndex(c => c.dataset.key == key);
            return Array.from(table.tBodies[0].rows).filter(r => !r.hidden).map(r => r.cells[index].dataset.sort);
        }""",
        key,
    )


def test_the_table_sorts_best_first_filters_and_keeps_it_all_in_the_address(tab, base):
    _leaderboard(tab, base, "lesion_a")
    tab.page.click("#leaderboard th[data-key=dice]")
    values = [float(v) for v in _column(tab, "dice") if v]
    assert values == sorted(values, reverse=True)  # the first click on a higher-is-better column: best first
    tab.page.click("#leaderboard th[data-key=hd95]")
    values = [float(v) for v in _column(tab, "hd95") if v]
    assert values == sorted(values)  # lower is better: smallest first
    tab.page.fill(".board-toolbar input.table-filter", "unet imagenet")
    tab.page.wait_for_function("document.querySelectorAll('#leaderboard tbody tr:not([hidden])').length == 2")
    assert "q=unet+imagenet" in tab.page.url and "sort=hd95" in tab.page.url
    tab.page.go_back()  # back to the dice sort (typing adds no history entries of its own)
    tab.page.wait_for_function("location.hash.includes('sort=dice')")
    tab.check_clean()


def test_the_numeric_limits_find_models_under_a_size_in_one_step_and_keep_it_in_the_address(tab, server):
    """Under N M parameters (the fixture's models are paper-size: N is their median), and at least K images/s."""
    _leaderboard(tab, server, "lung")
    every = [float(v) for v in _column(tab, "params") if v]
    limit = sorted(every)[len(every) // 2]
    assert min(every) < limit < max(every)
    tab.page.fill(".board-toolbar input.board-limit[data-limit=pmax]", f"{limit:g}")
    tab.page.wait_for_function(f"location.hash.includes('pmax={limit:g}')")
    shown = [float(v) for v in _column(tab, "params")]
    assert shown and all(v <= limit for v in shown) and len(shown) == sum(v <= limit for v in every)
    speeds = sorted(float(v) for v in _column(tab, "speed") if v)
    # a shared address restores both limits, and Reset view clears them
    tab.open(f"{server}/leaderboard/lung.html#pmax={limit:g}&smin={speeds[-1]}")
    tab.page.wait_for_selector(".board-toolbar")
    assert [float(v) for v in _column(tab, "speed")] == [speeds[-1]]
    assert float(tab.page.input_value(".board-toolbar input.board-limit[data-limit=smin]")) == speeds[-1]
    tab.page.click(".board-reset")
    tab.page.wait_for_function("!location.hash.includes('pmax')")
    assert len(_column(tab, "params")) == len(every)
    tab.check_clean()


def test_a_shared_address_restores_the_filter_and_the_comparison(tab, base):
    chosen = ["lesion_b-unet-resnet18-random", "lesion_b-fpn-mobilenet_v2-imagenet"]
    _leaderboard(tab, base, "lesion_b", f"#q=lesion_b&cols=gflops&sel={','.join(chosen)}")
    assert tab.page.input_value(".board-toolbar input.table-filter") == "lesion_b"
    ticked = tab.page.evaluate(
        "Array.from(document.querySelectorAll('input.pick:checked')).map(box => box.closest('tr').dataset.id)"
    )
    assert sorted(ticked) == sorted(chosen)
    assert tab.page.locator("#leaderboard th[data-key=gflops]").is_visible()
    tab.page.click(".compare-button")
    tab.page.wait_for_url("**/compare.html#models=*")
    tab.page.wait_for_selector(".compare-paired table")
    headers = tab.page.locator(".compare-table").first.locator("thead th").all_inner_texts()
    assert headers[1:] == chosen
    paired = tab.page.locator(".paired-table tbody tr").first.inner_text()
    assert "Dice" in paired and "[" in paired and "of 9 volumes" in paired
    tab.page.wait_for_selector("#compare-loss.vega-ok")
    tab.check_clean()


def test_the_table_fits_a_laptop_and_shows_dice_rank_and_tier_on_a_phone(browser, server):
    laptop = Tab(browser, 1440, 900)
    _leaderboard(laptop, server, "lung")
    overflow = laptop.page.evaluate("""() => {
        const wrap = document.querySelector('.board-wrap');
        return [wrap.scrollWidth - wrap.clientWidth, document.documentElement.scrollWidth - window.innerWidth];
    }""")
    assert overflow == [0, 0]
    laptop.check_clean()
    laptop.context.close()
    phone = Tab(browser, 390, 844)
    _leaderboard(phone, server, "lung")
    right = phone.page.evaluate("""() => {
        const table = document.getElementById('leaderboard');
        const rank = Array.from(table.tHead.rows[0].cells).findIndex(c => c.dataset.key == 'rank');
        const row = table.tBodies[0].rows[0];
        const right = cell => cell.getBoundingClientRect().right;
        return [right(row.querySelector('td.dice')), right(row.cells[rank])];
    }""")
    assert max(right) <= 390  # Dice, and the rank with its rank set and tier, without scrolling
    phone.check_clean()
    phone.context.close()


TABLE_PAGES = ("index.html", "compare/rankings.html", "compare/architectures.html", "compare/encoders.html",
               "models/lung-unet-resnet18-imagenet.html", "methods.html", "submit.html")  # fmt: skip
TABLE_OVERFLOW = """() => Array.from(document.querySelectorAll('article table')).map(table => {
    const wrap = table.closest('.md-typeset__scrollwrap') || table.parentElement;
    const right = wrap.getBoundingClientRect().right;
    return {over: table.scrollWidth - wrap.clientWidth,
            cut: Array.from(table.querySelectorAll('thead th'))
                 .filter(th => th.getBoundingClientRect().right > right + 1).map(th => th.textContent.trim())};
})"""


def test_plain_tables_fit_a_laptop_and_keep_dice_rank_and_tier_in_view_on_a_phone(browser, server):
    laptop, phone = Tab(browser, 1440, 900), Tab(browser, 390, 844)
    for page in TABLE_PAGES:
        laptop.open(f"{server}/{page}")
        assert [t for t in laptop.page.evaluate(TABLE_OVERFLOW) if t["over"] > 1] == [], page
        phone.open(f"{server}/{page}")
        cut = [header for t in phone.page.evaluate(TABLE_OVERFLOW) for header in t["cut"]]
        assert not [h for h in cut if re.search(r"\bdice\b|\brank\b|\btier\b", h, re.I)], (page, cut)
        assert phone.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, page
    laptop.check_clean()
    phone.check_clean()
    laptop.context.close()
    phone.context.close()


# ---------------------------------------------------------------- the volume viewer (WebGL2 in software)


@pytest.fixture(scope="module")
def webgl_browser(playwright):
    chromium = launch(playwright, webgl=True)
    yield chromium
    chromium.close()


def _pixels(locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=np.float64)


def _frames(page, count: int = 2) -> None:
    """Wait until the browser has painted ``count`` more frames (NiiVue draws on the next frame)."""
    page.evaluate("""(count) => new Promise(done => {
        const next = left => left ? requestAnimationFrame(() => next(left - 1)) : done();
        next(count);
    })""", count)  # fmt: skip


def test_the_viewer_draws_the_volume_and_the_prediction_toggles(webgl_browser, base):
    tab = Tab(webgl_browser)
    tab.open(f"{base}/models/lung-unet-resnet18-imagenet.html")
    assert not [url for url in tab.requested if "niivue" in url]  # the viewer loads when it comes into view
    tab.page.locator(".viewer").first.scroll_into_view_if_needed()
    tab.page.wait_for_selector(".viewer.viewer-ok", timeout=60_000)
    canvas = tab.page.locator(".viewer canvas").first
    canvas.scroll_into_view_if_needed()
    _frames(tab.page)
    shown = _pixels(canvas)
    assert shown.std() > 10 and (shown.max(axis=2) - shown.min(axis=2)).max() > 50  # an image, with colour
    tab.page.uncheck(".viewer input.viewer-overlay")
    _frames(tab.page)
    hidden = _pixels(canvas)
    assert abs(shown - hidden).mean() > 0.5  # the prediction's colours went
    colour = lambda pixels: (pixels.max(axis=2) - pixels.min(axis=2) > 60).mean()  # noqa: E731
    assert colour(hidden) < colour(shown)
    tab.check_clean()
    tab.context.close()


def test_without_webgl_the_viewer_says_so_in_one_line(browser, base):
    tab = Tab(browser)
    tab.page.add_init_script("HTMLCanvasElement.prototype.getContext = function () { return null; };")
    tab.open(f"{base}/models/lung-unet-resnet18-imagenet.html")
    tab.page.locator(".viewer").first.scroll_into_view_if_needed()
    tab.page.wait_for_selector(".viewer-fallback-shown")
    assert "needs WebGL2" in tab.page.locator(".viewer").inner_text()
    assert tab.page.locator("img[alt^='Predicted masks']").count() == 1  # the 2-D pictures remain
    tab.check_clean()
    tab.context.close()


def test_the_compare_view_shows_two_predictions_with_linked_slices(webgl_browser, base):
    chosen = ["lung-unet-resnet18-imagenet", "lung-unet-mobilenet_v2-imagenet"]
    tab = Tab(webgl_browser)
    tab.open(f"{base}/compare.html#models={','.join(chosen)}")
    tab.page.wait_for_selector(".compare-viewers")
    tab.page.locator(".compare-viewers").scroll_into_view_if_needed()  # the viewers load when they come into view
    tab.page.wait_for_function("document.querySelectorAll('.compare-viewers .viewer.viewer-ok').length == 2",
                               timeout=60_000)  # fmt: skip
    first = tab.page.locator(".compare-viewers canvas").first
    first.scroll_into_view_if_needed()
    box = first.bounding_box()
    # Click in the first viewer's axial tile, off its centre (NiiVue lays the tiles out by the canvas's shape).
    left, top, width, height = tab.page.evaluate("""() => {
        const viewer = document.querySelector('.compare-viewers .viewer').viewer;
        const tile = viewer.screenSlices.find(slice => slice.axCorSag === 0).leftTopWidthHeight;
        const ratio = viewer.uiData.dpr || 1;
        return tile.map(value => value / ratio);
    }""")
    crosshairs = """() => Array.from(document.querySelectorAll('.compare-viewers .viewer'))
        .map(viewer => Array.from(viewer.viewer.scene.crosshairPos))"""
    before = tab.page.evaluate(crosshairs)[0]
    tab.page.mouse.click(box["x"] + left + 0.3 * width, box["y"] + top + 0.35 * height)
    tab.page.wait_for_function(f"""(before) => ({crosshairs})()[0].some((value, axis) => value !== before[axis])""",
                               arg=before)  # fmt: skip
    positions = tab.page.evaluate(crosshairs)
    assert positions[0] != pytest.approx(before)  # the click moved the first viewer's crosshair ...
    assert positions[1] == pytest.approx(positions[0], abs=1e-6)  # ... and the second's with it
    tab.check_clean()
    tab.context.close()


# ---------------------------------------------------------------- third edition: phones, search, access


@pytest.mark.parametrize("page", CHART_PAGES)
def test_every_chart_fits_a_phone(browser, server, page):
    phone = Tab(browser, 390, 844)
    phone.open(f"{server}/{page}")
    count = phone.page.locator(".vega-chart").count()
    phone.page.wait_for_function(f"document.querySelectorAll('.vega-ok, .vega-error').length == {count}")
    widths = phone.page.evaluate("""() => Array.from(document.querySelectorAll('.vega-chart')).map(chart => {
        const svg = chart.querySelector('svg');
        return [chart.id, svg ? svg.getBoundingClientRect().right : 0];
    })""")
    assert all(right <= 390 for _, right in widths), widths
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.check_clean()
    phone.context.close()


def test_the_search_box_finds_model_pages_by_encoder(tab, base):
    tab.open(f"{base}/index.html")
    tab.page.click(".md-search__input")
    tab.page.keyboard.type("mobilenet")
    tab.page.wait_for_selector(".model-hits a")
    hits = tab.page.locator(".model-hits a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hits and all("models/" in href and "mobilenet_v2" in href for href in hits)
    tab.page.keyboard.type(" lesion_b imagenet")
    narrowed = (
        "Array.from(document.querySelectorAll('.model-hits a'))"
        ".every(a => a.textContent.startsWith('lesion_b') && a.textContent.includes('imagenet'))"
    )
    tab.page.wait_for_function(narrowed)
    tab.page.locator(".model-hits a").first.click()
    tab.page.wait_for_url("**/models/lesion_b-*mobilenet_v2-imagenet.html")
    tab.check_clean()


def test_an_unknown_id_in_the_compare_address_is_skipped_with_a_note(tab, base):
    chosen = ["lung-unet-resnet18-imagenet", "no-such-model", "lung-unet-mobilenet_v2-imagenet"]
    tab.open(f"{base}/compare.html#models={','.join(chosen)}")
    tab.page.wait_for_selector(".compare-paired table")
    assert "no-such-model" in tab.page.locator(".compare-unknown").inner_text()
    headers = tab.page.locator(".compare-table").first.locator("thead th").all_inner_texts()
    assert headers[1:] == [chosen[0], chosen[2]]
    tab.page.wait_for_selector("#compare-loss.vega-ok")
    assert not [url for url in tab.requested if "niivue" in url]  # the viewer waits until it is scrolled to
    tab.check_clean()


def test_the_leaderboard_with_every_column_fits_a_laptop_and_the_picker_floats(browser, server):
    laptop = Tab(browser, 1440, 900)
    everything = "gflops,sensitivity,specificity,precision,slice,paper,reported,epoch,hd95_median,missed"
    _leaderboard(laptop, server, "lung", f"#cols={everything}")
    overflow = laptop.page.evaluate("""() => {
        const wrap = document.querySelector('.board-wrap');
        return [wrap.scrollWidth - wrap.clientWidth, document.documentElement.scrollWidth - window.innerWidth];
    }""")
    assert overflow == [0, 0]
    table_top = laptop.page.locator("#leaderboard").bounding_box()["y"]
    laptop.page.click(".column-picker summary")
    assert laptop.page.locator(".picker-panel").is_visible()
    assert laptop.page.locator("#leaderboard").bounding_box()["y"] == table_top  # it floats over the table
    laptop.page.keyboard.press("Escape")
    assert not laptop.page.locator(".picker-panel").is_visible()
    laptop.page.click(".column-picker summary")
    laptop.page.click("h1")
    assert not laptop.page.locator(".picker-panel").is_visible()
    # One vocabulary: the CSV's status word finds its rows; a disabled button is out of the tab order.
    laptop.page.fill(".board-toolbar input.table-filter", "degenerate")
    laptop.page.wait_for_function("document.querySelectorAll('#leaderboard tbody tr:not([hidden])').length == 1")
    assert laptop.page.locator(".compare-button").get_attribute("tabindex") == "-1"
    laptop.page.locator("#leaderboard th[data-key=nsd]").focus()
    laptop.page.keyboard.press(" ")
    laptop.page.wait_for_function("location.hash.includes('sort=nsd')")
    laptop.check_clean()
    laptop.context.close()


def test_a_blob_opens_its_model(tab, base):
    tab.open(f"{base}/leaderboard/lung.html")
    tab.page.wait_for_selector("#blob-plot.vega-ok")
    _click_mark(tab, "#blob-plot g.mark-symbol path")
    tab.check_clean()


AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ACCESSIBLE_PAGES = ("index.html", "leaderboard/lung.html", "models/lung-unet-resnet18-imagenet.html",
                    "compare.html#models=lung-unet-resnet18-imagenet,lung-unet-mobilenet_v2-imagenet",
                    "methods.html", "models/fixture-submission.html", "submit.html", "cite.html")  # fmt: skip


@pytest.mark.parametrize("page", ACCESSIBLE_PAGES)
def test_axe_finds_no_serious_or_critical_violations(tab, server, page):
    tab.open(f"{server}/{page}")
    tab.page.wait_for_function("document.querySelectorAll('.vega-chart:not(.vega-ok)').length == 0")
    if "compare" in page:
        tab.page.wait_for_selector("#compare-loss.vega-ok")
    tab.page.add_script_tag(path=str(AXE))
    violations = tab.page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
    }""")
    assert violations == [], violations
    tab.check_clean()


def test_the_viewer_opens_on_the_slice_with_the_most_target(webgl_browser, base):
    """The target (true positives and false negatives), not any label: a lesion model's false positives
    elsewhere must not decide where the reader first looks."""
    tab = Tab(webgl_browser)
    tab.open(f"{base}/models/lung-unet-resnet18-imagenet.html")
    tab.page.locator(".viewer").first.scroll_into_view_if_needed()
    tab.page.wait_for_selector(".viewer.viewer-ok", timeout=60_000)
    opened, target = tab.page.evaluate("""() => {
        const nv = document.querySelector('.viewer').viewer, labels = nv.volumes[1], dims = labels.hdr.dims;
        const plane = dims[1] * dims[2], target = [];
        for (let z = 0; z < dims[3]; z++) {
            let count = 0;
            for (let i = z * plane; i < (z + 1) * plane; i++) if (labels.img[i] === 1 || labels.img[i] === 3) count++;
            target.push(count);
        }
        return [Math.round(nv.frac2vox(nv.scene.crosshairPos)[2]), target];
    }""")
    assert max(target) > 0 and target[opened] == max(target)
    canvas = tab.page.locator(".viewer canvas").first
    assert canvas.get_attribute("aria-label").startswith("Volume viewer")
    position = tab.page.locator(".viewer-position").inner_text()
    canvas.focus()
    tab.page.keyboard.press("ArrowUp")
    tab.page.wait_for_function(f"document.querySelector('.viewer-position').textContent != {position!r}")
    before = _pixels(canvas)
    tab.page.check(".viewer input.viewer-outline")
    tab.page.wait_for_function("document.querySelector('.viewer').viewer.volumes[1].img.some(v => v)")
    assert abs(_pixels(canvas) - before).mean() > 0.1  # the outline draws something else than the fill
    tab.check_clean()
    tab.context.close()
