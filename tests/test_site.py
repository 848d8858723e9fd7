"""The site generator: snapshots of its Markdown and chart specs, its errors, and a strict mkdocs build.

Snapshots live in tests/snapshots/site/, with each chart's compiled Vega replaced by a placeholder (its
structure is tested below, and a library upgrade rewrites every line of it); after an intended change,
regenerate them with ``UPDATE_SNAPSHOTS=1 python -m pytest tests/test_site.py`` and review the diff.
"""

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2
import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.site import charts
from pipeline.site.build import Provenance, build, embed, environment, generate
from pipeline.site.data import load_results
from pipeline.site.model_page import model_context
from tests.conftest import FIXED_PROVENANCE_ARGS, ROOT, error_line, run_here

SNAPSHOTS = Path(__file__).parent / "snapshots" / "site"
SNAPSHOT_PAGES = (
    "index.md",
    "leaderboard/lung.md",
    "models/lung-unet-resnet18-random.md",
    "models/lung-fpn-resnet18-random.md",  # the fixture's failed model
    "models/lung-fpn-resnet18-imagenet.md",  # and the one that did not learn
    "compare.md",
    "compare/rankings.md",
    "compare/architectures.md",
    "compare/encoders.md",
    "compare/initialisation.md",
    "compare/lesions.md",
    "compare/training.md",
    "compare/figures.md",
    "methods.md",
    "models/index.md",
    "models/fixture-submission.md",  # a submission, whose metadata is hostile text
    "submit.md",
)
FIXED_PROVENANCE = Provenance(*FIXED_PROVENANCE_ARGS)
SPEC = re.compile(r'(<script type="application/json" class="vega-spec" data-target="[^"]+">)(.*?)(</script>)')


@pytest.fixture(scope="module")
def fixture_results(fixture_records):
    return load_results(*fixture_records)


@pytest.fixture(scope="module")
def generated(fixture_docs) -> Path:
    return fixture_docs


def without_specs(markdown: str) -> str:
    """A page as its snapshot keeps it: each chart's compiled Vega replaced by the names of its marks."""

    def placeholder(match: re.Match) -> str:
        spec = json.loads(match.group(2).replace("<\\/", "</"))
        marks = sorted({mark.get("type", "?") for mark in _marks(spec)})
        return f"{match.group(1)}«vega spec: {', '.join(marks)}»{match.group(3)}"

    return SPEC.sub(placeholder, markdown)


def _marks(spec: dict) -> list[dict]:
    found = []
    for mark in spec.get("marks", []):
        found += [mark, *_marks(mark)]
    return found


@pytest.mark.parametrize("page", SNAPSHOT_PAGES)
def test_generated_pages_match_their_snapshots(generated, page):
    text = without_specs((generated / page).read_text())
    snapshot = SNAPSHOTS / page
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(text)
    assert snapshot.exists(), f"no snapshot for {page}: run with UPDATE_SNAPSHOTS=1"
    assert text == snapshot.read_text(), f"{page} differs from its snapshot (UPDATE_SNAPSHOTS=1 after review)"


def _specs(markdown: str) -> list[dict]:
    found = re.findall(
        r'<script type="application/json" class="vega-spec" data-target="[^"]+">(.*?)</script>', markdown
    )
    return [json.loads(text.replace("<\\/", "</")) for text in found]


def _data_urls(node):
    if isinstance(node, dict):
        if isinstance(node.get("data"), dict) and "url" in node["data"]:
            yield node["data"]["url"]
        for value in node.values():
            yield from _data_urls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _data_urls(value)


def test_every_page_of_the_fixture_is_written(generated, fixture_results):
    for model_id in fixture_results.models:
        assert (generated / "models" / f"{model_id}.md").exists()
        assert (generated / "data" / "models" / f"{model_id}.js").exists()  # what the compare view loads
    for name in (
        "index.md",
        "methods.md",
        "reference.md",
        "get-a-model.md",
        "cite.md",
        "compare.md",
        "downloads/leaderboard.csv",
        "downloads/rankings.csv",
        "downloads/CITATION.cff",
        "data/models.js",
    ):
        assert (generated / name).exists(), name
    assert len(list((generated / "img" / "masks").glob("*.png"))) == 23  # the failed model has no picture


def test_no_page_shows_a_placeholder_or_a_model_id_the_build_lacks(generated, fixture_results):
    """A reader copies what a page shows: no `<repository URL>`, and every model id a page names exists here
    (examples come from the build's own models)."""
    ids = set(fixture_results.leaderboard["id"])
    # The paper's own Table II rows are quoted as the paper's (its best row, say), never offered to fetch.
    paper = pd.read_csv(ROOT / "reference" / "paper_table2_metrics.csv")
    ids |= {f"{r.experiment}-{r.architecture}-{r.encoder}-{r.encoder_weights}" for r in paper.itertuples()}
    grid = re.compile(r"\b(?:lung|lesion_a|lesion_b)-[a-z0-9_]+-[a-z0-9_.-]+?-(?:random|imagenet)\b")
    for page in generated.rglob("*.md"):
        text = page.read_text()
        assert "<repository URL>" not in text and "&lt;repository URL&gt;" not in text, page
        named = set(grid.findall(text)) - ids
        assert not named, f"{page.relative_to(generated)} names {sorted(named)[:3]}, which this build lacks"
    get = (generated / "get-a-model.md").read_text()
    assert "not published yet" in get or "dvc get https://" in get


def _signals(spec: dict) -> dict:
    found = {signal["name"]: signal for signal in spec.get("signals", [])}
    for mark in spec.get("marks", []):
        found.update(_signals(mark))
    return found


def test_chart_specs_are_vega_compiled_at_build_with_their_data_inline(generated):
    specs = [spec for page in SNAPSHOT_PAGES for spec in _specs((generated / page).read_text())]
    assert len(specs) >= 12
    for spec in specs:
        assert spec["$schema"] == "https://vega.github.io/schema/vega/v6.json"  # no Vega-Lite compiler needed
        assert not list(_data_urls(spec)), "a data url renders nothing under file://"
        assert "made-up results fixture" in json.dumps(spec["title"])  # every export says it is not real


def _values(spec: dict) -> list[dict]:
    return [row for entry in spec["data"] for row in entry.get("values", [])]


def test_leaderboard_chart_offers_only_what_its_experiment_has(fixture_results):
    board = fixture_results.leaderboard
    spec = charts.leaderboard_chart(board, "lesion_a", lambda i: f"../models/{i}.html", "cpu", "note")
    bound = {name for name, signal in _signals(spec).items() if "bind" in signal}
    assert bound == {"show_unet", "show_fpn", "initialisation"}  # no experiment selector on an experiment's page
    assert _signals(spec)["initialisation"]["bind"]["options"] == ["all", "random", "imagenet"]
    text = json.dumps(spec)
    assert '"href"' in text and "brush" not in text and "Pareto front" in text
    rows = [row for row in _values(spec) if "rank_interval" in row]
    assert {row["experiment"] for row in rows} == {"lesion_a"}
    formulas = [
        step["expr"] for entry in spec["data"] for step in entry.get("transform", []) if step["type"] == "formula"
    ]
    assert '"../models/" + datum.id + ".html"' in formulas  # each point's link, from its id
    assert len(rows) == 8  # only ranked models are drawn
    # Pareto labels name the model (its id without the experiment), never the encoder alone.
    assert all(row["label"] == row["id"].removeprefix("lesion_a-") for row in rows)
    assert len({row["label"] for row in rows}) == len(rows)
    # A grid of one initialisation and one architecture offers no selector at all.
    single = board[(board["encoder_weights"] == "random") & (board["architecture"] == "unet")]
    spec = charts.leaderboard_chart(single, "lesion_a", lambda i: i, "cpu", "")
    assert not [signal for signal in _signals(spec).values() if "bind" in signal]
    legend = json.dumps(spec)
    assert '"linknet"' not in legend and '"pspnet"' not in legend and '"fpn"' not in legend


def test_an_architecture_outside_the_papers_four_keeps_its_points_name_and_colour(fixture_results):
    """params accept any smp architecture: a grid with deeplabv3 must not lose its points from the chart."""
    board = fixture_results.leaderboard.copy()
    board.loc[board["architecture"] == "fpn", "architecture"] = "deeplabv3"
    spec = charts.leaderboard_chart(board, "lesion_a", lambda i: i, "cpu", "")
    drawn = {row["architecture"] for row in _values(spec) if "rank_interval" in row}
    assert "deeplabv3" in drawn and "show_deeplabv3" in _signals(spec)
    scales = [scale for scale in spec["scales"] if "deeplabv3" in json.dumps(scale.get("domain", ""))]
    assert scales and all("#9467bd" in json.dumps(scale["range"]) for scale in scales)
    assert charts.architectures_in(["submission", "zeta", "unet", "deeplabv3"]) == ["unet", "deeplabv3", "zeta",
                                                                                    "submission"]  # fmt: skip


def test_the_leaderboard_table_has_one_row_per_model_and_direction_arrows(generated, fixture_results):
    text = (generated / "leaderboard" / "lung.md").read_text()
    assert text.count('<tr data-id="') == 9  # the grid's 8 and the fixture's submission
    assert text.count('data-source="external"') == 1 and "badge-external" in text
    assert 'data-key="dice" data-family="overlap" data-dir="up"' in text
    assert 'data-key="hd95" data-family="boundary" data-dir="down"' in text
    assert 'data-status="degenerate"' in text and "did not learn" in text and 'data-status="failed"' in text
    assert "not in the paper" in text and 'class="ci-bar"' in text
    # Ranked rows first, by rank; the models that were not ranked after them.
    ids = re.findall(r'<tr data-id="([^"]+)" data-status="([a-z]+)"', text)
    assert [status for _, status in ids][-2:] == ["degenerate", "failed"]


def test_banner_says_when_results_are_synthetic(generated):
    for page in SNAPSHOT_PAGES:
        text = (generated / page).read_text()
        assert "Synthetic results: not the paper's data" in text, page
        assert "made-up results fixture" in text


def test_a_missing_template_value_is_an_error_not_a_blank():
    template = environment(0.95).from_string("Dice {{ m.dice }}")
    with pytest.raises(jinja2.UndefinedError):
        template.render(m={})


@pytest.mark.parametrize("planted", ["</script><script>alert(1)</script>", "<!--<script>", "a & b \u2028 c"])
def test_embed_cannot_be_closed_or_commented_out_by_the_data(planted):
    """``<!--<script>`` in a string made the HTML parser swallow the rest of the page (script-data states);
    the JSON carries no <, > or & at all, and JSON.parse gives the string back as it was."""
    html = embed({"datasets": {"x": [{"id": planted}]}}, "c")
    assert html.count("</script>") == 1 and "<!--" not in html and "\u2028" not in html
    spec = html.split('data-target="c">', 1)[1].rsplit("</script>", 1)[0]
    assert not set(spec) & set("<>&") and json.loads(spec)["datasets"]["x"][0]["id"] == planted


def _remote(tmp_path, folder_md5: str, manifest: list) -> Path:
    """A published remote holding one folder manifest, and a dvc.lock naming it for lung-unet-resnet18-imagenet."""
    cache = tmp_path / ".dvc" / "cache"
    if len(folder_md5) > 4:
        target = cache / "files" / "md5" / folder_md5[:2] / folder_md5[2:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(manifest))
    lock = {"schema": "2.0", "stages": {"train@lung-unet-resnet18-imagenet": {
        "outs": [{"path": "models/lung-unet-resnet18-imagenet", "md5": folder_md5}]}}}  # fmt: skip
    (tmp_path / "dvc.lock").write_text(json.dumps(lock))
    return cache


@pytest.mark.parametrize(
    ("folder_md5", "manifest"),
    [
        ("../../../../outside.dir", []),  # walks out of the remote
        ("12" + "3" * 30 + ".dir", [{"md5": '"><img src=x onerror=alert(1)>', "relpath": "model.safetensors"}]),
        ("12" + "3" * 30 + ".dir", [{"md5": "ab" + "c" * 29 + "/", "relpath": "model.safetensors"}]),
        ("12" + "3" * 30 + ".dir", {"model.safetensors": "not a list"}),
    ],
)
def test_a_direct_link_is_built_only_from_checked_hashes(fixture_results, tmp_path, monkeypatch, folder_md5,
                                                         manifest):  # fmt: skip
    """dvc.lock and the remote's manifests can arrive in a pull request: an md5 that is not 32 hex digits gives
    no link (and no path outside the remote is read), and nothing from them reaches the page as markup."""
    (tmp_path / "outside.dir").write_text(json.dumps([{"md5": "<script>", "relpath": "model.safetensors"}]))
    cache = _remote(tmp_path, folder_md5, manifest)
    monkeypatch.chdir(tmp_path)
    provenance = Provenance("rev", {}, "https://models.example.org/dvcstore/", cache)
    context = model_context(fixture_results, "lung-unet-resnet18-imagenet", provenance)
    assert context["direct_url"] is None
    page = environment(0.95).get_template("model.md.j2").render(**context)
    assert "onerror" not in page and "<script>" not in page and "files/md5" not in page


def test_missing_results_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"leaderboard.csv: is missing"):
        load_results(tmp_path / "results", tmp_path / "figures")


def test_malformed_leaderboard_names_the_file_and_columns(fixture_copy, tmp_path):
    results, figures = fixture_copy
    board = pd.read_csv(results / "leaderboard.csv").drop(columns=["dice"])
    board.to_csv(results / "leaderboard.csv", index=False)
    with pytest.raises(DataError, match=r"leaderboard.csv: lacks the column dice;"):
        load_results(results, figures)


def test_stage_error_is_one_line_and_keeps_the_previous_site(tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("previous site")
    result = run_here(
        "pipeline.site.build",
        "--results",
        str(tmp_path / "nothing"),
        "--out",
        str(public),
        "--docs",
        str(tmp_path / "docs"),
    )
    assert result.returncode == 2
    assert error_line(result).startswith("error: ") and "leaderboard.csv: is missing" in error_line(result)
    assert (public / "index.html").read_text() == "previous site"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and ((tag == "a" and name == "href") or name == "src" or (tag == "link" and name == "href")):
                self.links.append(value)


@pytest.fixture(scope="module")
def built_site(fixture_site) -> Path:
    return fixture_site


def test_strict_build_has_every_page_and_no_model_page_in_the_navigation(built_site, fixture_results):
    assert (built_site / "index.html").exists() and (built_site / "leaderboard" / "lung.html").exists()
    model_page = built_site / "models" / "lung-unet-resnet18-imagenet.html"
    best = fixture_results.summary["leaders"]["lung"]["id"]
    home = (built_site / "index.html").read_text()
    assert f"models/{best}.html" in home  # linked from the home page's table ...
    assert home.count("models/lesion_b-") < 3  # ... but the 24 model pages are not all in the sidebar
    assert model_page.stat().st_size < 100_000


def test_every_internal_link_resolves_and_nothing_external_is_loaded(built_site):
    # 404.html is for web servers: its links are absolute from the site's root.
    pages = [page for page in built_site.rglob("*.html") if page.name != "404.html"]
    assert len(pages) > 30
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https"):
                # Outbound links are fine to click; nothing may be loaded from outside.
                assert not re.search(rf'(src|<link[^>]*href)="{re.escape(link)}"', page.read_text()), (page, link)
                continue
            if parts.scheme or not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.exists(), f"{page.relative_to(built_site)} links to a missing {link}"


def test_downloads_hold_the_leaderboard(built_site, fixture_results):
    csv = pd.read_csv(built_site / "downloads" / "leaderboard-lung.csv")
    assert len(csv) == 9 and set(csv["experiment"]) == {"lung"} and set(csv["source"]) == {"grid", "external"}
    records = json.loads((built_site / "downloads" / "leaderboard.json").read_text())
    assert {r["id"] for r in records} == set(fixture_results.models)


def test_vendored_javascript_is_one_copy_in_the_sources():
    vendor = ROOT / "site" / "assets" / "js" / "vendor"
    names = {p.name for p in vendor.glob("*.js")}
    assert "vega.min.js" in names and not names & {"vega-lite.min.js", "vega-embed.min.js"}  # compiled at build
    licences = {p.name.removesuffix(".LICENSE") for p in (vendor / "licenses").iterdir()}
    assert all(any(name.startswith(licence) for licence in licences) for name in names)


def test_vendored_files_are_the_registrys_as_recorded():
    """site/assets/js/vendor/ holds exactly what tools/vendor_js.py fetched from the npm registry."""
    from tools import vendor_js

    record = json.loads(vendor_js.RECORD.read_text())
    assert vendor_js.check(record) == []
    assert {entry["version"] for name, entry in record.items() if name == "@niivue/niivue"} == {"0.69.0"}
    on_disk = {p.relative_to(vendor_js.VENDOR_DIR).as_posix() for p in vendor_js.VENDOR_DIR.rglob("*") if p.is_file()}
    recorded = {name for entry in record.values() for name in entry["files"]}
    assert on_disk - {"vendored.json"} == recorded  # nothing vendored by hand beside them


def test_model_page_links_the_checkpoint_when_a_public_remote_is_set(fixture_results, tmp_path, monkeypatch):
    model_id = "lung-unet-resnet18-imagenet"
    manifest = [
        {"md5": "ab" + "c" * 30, "relpath": "model.safetensors"},
        {"md5": "de" + "f" * 30, "relpath": "train.json"},
    ]
    folder_md5 = "12" + "3" * 30 + ".dir"
    cache = tmp_path / ".dvc" / "cache"
    (cache / "files" / "md5" / "12").mkdir(parents=True)
    (cache / "files" / "md5" / "12" / folder_md5[2:]).write_text(json.dumps(manifest))
    lock = {"schema": "2.0", "stages": {f"train@{model_id}": {"outs": [{"path": f"models/{model_id}",
                                                                         "md5": folder_md5}]}}}  # fmt: skip
    (tmp_path / "dvc.lock").write_text(json.dumps(lock))
    monkeypatch.chdir(tmp_path)
    provenance = Provenance("rev", {}, "https://models.example.org/dvcstore/", cache, "https://example.org/bench")
    context = model_context(fixture_results, model_id, provenance)
    assert context["direct_url"] == "https://models.example.org/dvcstore/files/md5/ab/" + "c" * 30
    page = environment(0.95).get_template("model.md.j2").render(**context)
    assert "download the folder's files directly" in page and context["direct_url"] in page
    assert list(context["downloads"]) == ["model.safetensors"]  # the manifest's model files, each linked
    # Each command is a block of its own: a fence followed by text on the next line makes Markdown put the
    # block and that text into one paragraph (<p><div class="highlight">...).
    command = f"dvc get https://example.org/bench models/{model_id} -o {model_id}\n```\n"
    assert command + "\n" in page
    # A model the published remote does not hold yet gets no link, and says so.
    other = model_context(fixture_results, "lesion_a-unet-resnet18-random", provenance)
    assert other["direct_url"] is None
    assert "not in the published remote" in environment(0.95).get_template("model.md.j2").render(**other)


PLANTED = '<img src=x onerror="alert(1)">'


class _Elements(HTMLParser):
    """Every attribute of every element of a page, as the browser would see them."""

    def __init__(self):
        super().__init__()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.attributes += attrs


@pytest.mark.slow
def test_markup_planted_in_results_reaches_the_pages_only_escaped(fixture_copy, tmp_path):
    """A pull request can edit results/: every text field that reaches a page must arrive as text."""
    results, figures = fixture_copy
    board = pd.read_csv(results / "leaderboard.csv")
    failed = board.loc[board["status"] == "failed", "id"].iloc[0]
    ok = board.loc[board["status"] == "ok", "id"].iloc[0]
    board.loc[board["id"] == failed, "status_reason"] = PLANTED + " [x](javascript:alert(2)) { onclick=alert(3) }"
    board.loc[board["id"] == ok, "speed_device"] = PLANTED
    board.to_csv(results / "leaderboard.csv", index=False)
    for model_id, field in ((failed, "training_error"), (ok, "device")):
        path = results / model_id / "metrics.json"
        record = json.loads(path.read_text())
        record[field] = PLANTED + " | `code` ![i](x)"
        path.write_text(json.dumps(record))
    volumes = pd.read_csv(results / ok / "volumes.csv")
    volumes.loc[0, "volume"] = PLANTED
    volumes.to_csv(results / ok / "volumes.csv", index=False)
    record = json.loads((results / ok / "metrics.json").read_text())
    record["test_volumes"][0] = PLANTED  # the volume's name as its evaluation lists it
    (results / ok / "metrics.json").write_text(json.dumps(record))
    summary = json.loads((results / "summary.json").read_text())
    summary["profile"] = PLANTED + " <!--<script>"  # the profile is in every chart's note
    (results / "summary.json").write_text(json.dumps(summary))
    docs, public = tmp_path / "docs", tmp_path / "public"
    generate(load_results(results, figures), FIXED_PROVENANCE, docs)
    build(docs, public, ROOT / "mkdocs.yml")
    pages = {page: page.read_text() for page in public.rglob("*.html")}
    scripts = {page: page.read_text() for page in (public / "data").rglob("*.js")}
    for page, html in pages.items():
        parser = _Elements()
        parser.feed(html)
        # No planted element or attribute came alive: no event handler, no image of ours, no script link.
        assert not [a for a in parser.attributes if a[0].startswith("on")], page
        assert not [a for a in parser.attributes if a == ("src", "x")], page
        assert not [a for a in parser.attributes if (a[1] or "").lower().startswith("javascript:")], page
    for page, html in pages.items():  # no string can open a comment in a script, which swallows the page after it
        assert "<!--<script>" not in html, page
    model_page = pages[public / "models" / f"{failed}.html"]
    assert "&lt;img src=x onerror=" in model_page  # shown, as text
    submission = pages[public / "models" / "fixture-submission.html"]  # its submitter's text, as text
    assert "A &lt;b&gt;bold&lt;/b&gt;" in submission and "<b>bold</b>" not in submission
    assert "Ada &lt;script&gt;alert&#40;1&#41;&lt;/script&gt; Lovelace" in submission
    assert "&lt;img src=x onerror=" in pages[public / "models" / f"{ok}.html"]
    for data in scripts.values():  # the compare view's data: JSON, inserted with textContent only
        assert "</" not in data


@pytest.mark.parametrize(
    ("planted", "message"),
    [
        ("../../../../outside/x", "is not a model id"),
        ("lung-unet-resnet18-<img>", "unknown weights"),
        ("lung-unet-resnet34-random", "disagrees with its columns"),
    ],
)
def test_ids_read_back_from_results_are_checked_before_any_file_is_written(fixture_copy, tmp_path, planted, message):
    results, figures = fixture_copy
    board = pd.read_csv(results / "leaderboard.csv")
    board.loc[0, "id"] = planted
    board.to_csv(results / "leaderboard.csv", index=False)
    with pytest.raises(DataError, match=message):
        load_results(results, figures)
    assert not (tmp_path.parent / "outside").exists() and not (tmp_path / "outside").exists()


def test_a_submissions_id_is_checked_as_a_submission_name(fixture_copy, tmp_path):
    results, figures = fixture_copy
    board = pd.read_csv(results / "leaderboard.csv")
    board.loc[board["source"] == "external", "id"] = "../../outside"
    board.to_csv(results / "leaderboard.csv", index=False)
    with pytest.raises(DataError, match="is not a submission name"):
        load_results(results, figures)


def test_a_strict_build_failure_names_the_page_and_the_link(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a broken link](missing-page.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: test\nstrict: true\nvalidation:\n  links:\n    unrecognized_links: warn\n")
    with pytest.raises(DataError, match=r"'index.md' contains a link 'missing-page.md', but the target is not found"):
        build(docs, tmp_path / "public", config)


def test_the_revision_ignores_the_pipelines_own_outputs(tmp_path):
    import subprocess

    from pipeline.site.build import git_revision

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.lock").write_text("a")
    (tmp_path / "code.py").write_text("a")
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.lock").write_text("rewritten by dvc repro")
    assert "uncommitted" not in git_revision(tmp_path)
    (tmp_path / "code.py").write_text("edited")
    assert git_revision(tmp_path).endswith("+ uncommitted changes")


def test_a_build_without_a_published_remote_names_no_publisher_setting(built_site):
    """Readers are told how to get a model (rebuild it), never which setting the publisher left empty; only the
    pipeline reference, which documents every parameter, names them."""
    for page in built_site.rglob("*.html"):
        if page.name == "reference.html":
            continue
        text = page.read_text()
        assert "site.repo_url" not in text and "site.remote_url" not in text, page
    model = (built_site / "models" / "lung-unet-resnet18-random.html").read_text()
    assert "dvc repro train@lung-unet-resnet18-random" in model and "dvc pull train@" not in model
    degenerate = (built_site / "models" / "lung-fpn-resnet18-imagenet.html").read_text()
    assert "This run did not learn" in degenerate  # beside its get-it block


def test_the_cite_page_gives_bibtex_for_the_benchmark_and_the_study(built_site):
    cite = (built_site / "cite.html").read_text()
    # (highlighted: each token in a span of its own)
    assert all(token in cite for token in ("@software", "covid_ct_benchmark", "@article", "bizopoulos2020"))


def test_publish_copies_the_models_of_the_current_grid_only(tmp_path):
    """dvc.lock keeps the records of stages another profile defined (its train@ cells stay in the lock after a
    profile switch): only the runs of the params are published, each folder with the files its manifest lists."""
    from pipeline.core.cells import parse_run_id
    from pipeline.site.publish import published_objects

    folder, weights, stale = "12" + "3" * 30, "ab" + "c" * 30, "45" + "6" * 30
    cache = _remote(tmp_path, folder + ".dir", [{"md5": weights, "relpath": "model.safetensors"}])
    lock = json.loads((tmp_path / "dvc.lock").read_text())
    lock["stages"]["train@lung-unet-mobilenet_v2-random"] = {"outs": [{"path": "m", "md5": stale + ".dir"}]}
    (tmp_path / "dvc.lock").write_text(json.dumps(lock))
    runs = [parse_run_id("lung-unet-resnet18-imagenet"), parse_run_id("lung-unet-resnet18-imagenet~seed2")]
    objects = published_objects(runs, lock=tmp_path / "dvc.lock", cache=cache, submissions=tmp_path / "none")
    assert objects == [f"files/md5/12/{'3' * 30}.dir", f"files/md5/ab/{'c' * 30}"]  # the repeat: not trained yet


def _luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour."""
    channels = [c / 255 for c in rgb]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_the_mask_colours_are_the_codes_and_their_legend_reads_at_4_5_to_1(generated):
    """One palette (pipeline.core.viewer.COLOURS, Okabe and Ito's colour-blind-safe colours) for the pictures, the
    viewer and the legends, whose CSS the build writes from it; the legend's black text reaches 4.5:1 on each."""
    from pipeline.core.viewer import COLOURS

    css = (generated / "assets" / "css" / "palette.css").read_text()
    for name, colour in COLOURS.items():
        assert f".mask-key.{name} {{ background: rgb{colour}; }}" in css
        assert (_luminance(colour) + 0.05) / 0.05 >= 4.5  # black text on it
    assert "rgb(" not in (ROOT / "site" / "assets" / "css" / "site.css").read_text().split(".mask-key")[1][:200]


def test_a_model_page_offers_a_skip_link_to_its_viewer(fixture_site):
    page = (fixture_site / "models" / "lung-unet-resnet18-imagenet.html").read_text()
    assert '<a class="skip-link" href="#in-3-d">' in page and 'id="in-3-d"' in page
    assert page.index("skip-link") < page.index('class="summary-card')  # before the tables, not after them


def test_a_models_downloads_take_the_weights_sha256_from_its_record_and_hash_only_the_small_files(tmp_path):
    """At 600 models the weights are never read again to hash them: the training record's sha256 is used where
    its md5 is the manifest's; config.json and preprocessing.json are hashed from the store."""
    import hashlib

    from pipeline.site.remote import model_downloads, object_path

    config, weights = "12" + "a" * 30, "34" + "b" * 30
    manifest = [{"md5": config, "relpath": "config.json"}, {"md5": weights, "relpath": "model.safetensors"}]
    cache = _remote(tmp_path, "56" + "c" * 30 + ".dir", manifest)
    (cache / object_path(config)).parent.mkdir(parents=True, exist_ok=True)
    (cache / object_path(config)).write_text("{}")  # the weights' object is not in the store: never read
    known = {"model.safetensors": {"md5": weights, "sha256": "f" * 64}}
    found = model_downloads("https://x.org/store", "lung-unet-resnet18-imagenet", cache, known, tmp_path / "dvc.lock")
    assert found["config.json"] == (f"https://x.org/store/{object_path(config)}", hashlib.sha256(b"{}").hexdigest())
    assert found["model.safetensors"] == (f"https://x.org/store/{object_path(weights)}", "f" * 64)
    other = {"model.safetensors": {"md5": "0" * 32, "sha256": "f" * 64}}  # another file's record: not taken
    assert model_downloads("https://x.org/store", "lung-unet-resnet18-imagenet", cache, other,
                           tmp_path / "dvc.lock")["model.safetensors"][1] is None  # fmt: skip
