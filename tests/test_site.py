"""The site generator: snapshots of its Markdown and chart specs, its errors, and a strict mkdocs build.

Snapshots live in tests/snapshots/site/; after an intended change, regenerate them with
``UPDATE_SNAPSHOTS=1 python -m pytest tests/test_site.py`` and review the diff.
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

from benchmarks.results_fixture import write_results_fixture
from pipeline import charts
from pipeline.errors import DataError
from pipeline.site_build import Provenance, build, embed, environment, generate, model_context
from pipeline.site_data import load_results
from tests.conftest import ROOT, error_line, run_module

SNAPSHOTS = Path(__file__).parent / "snapshots" / "site"
SNAPSHOT_PAGES = (
    "index.md",
    "leaderboard/lung.md",
    "models/lung-unet-resnet18-imagenet.md",
    "models/lung-fpn-resnet18-random.md",  # the fixture's failed model
    "compare/architectures.md",
    "compare/encoders.md",
    "compare/initialisation.md",
    "compare/lesions.md",
    "compare/training.md",
    "compare/figures.md",
    "models/index.md",
)
FIXED_PROVENANCE = Provenance(
    "0123456789abcdef", {"data": "d" * 8, "code": "c" * 8, "train": {"epochs": 5}}, "", Path("/nonexistent")
)


def small_fixture(root: Path) -> tuple[Path, Path]:
    """3 experiments x 2 architectures x 2 encoders x 2 initialisations = 24 models, the first failed."""
    return write_results_fixture(
        root, architectures=("fpn", "unet"), encoders=("resnet18", "mobilenet_v2"), epochs=5, seed=1
    )


@pytest.fixture(scope="module")
def fixture_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixture")
    return load_results(*small_fixture(root))


@pytest.fixture(scope="module")
def generated(fixture_results, tmp_path_factory) -> Path:
    docs = tmp_path_factory.mktemp("docs") / "docs"
    generate(fixture_results, FIXED_PROVENANCE, docs)
    return docs


@pytest.mark.parametrize("page", SNAPSHOT_PAGES)
def test_generated_pages_match_their_snapshots(generated, page):
    text = (generated / page).read_text()
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
    for name in ("index.md", "methods.md", "reference.md", "get-a-model.md", "downloads/leaderboard.csv"):
        assert (generated / name).exists(), name
    assert len(list((generated / "img" / "masks").glob("*.png"))) == 23  # the failed model has no picture


def test_chart_specs_are_vega_lite_with_their_data_inline(generated):
    specs = [spec for page in SNAPSHOT_PAGES for spec in _specs((generated / page).read_text())]
    assert len(specs) >= 9
    for spec in specs:
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")
        assert not list(_data_urls(spec)), "a data url renders nothing under file://"


def test_leaderboard_chart_has_the_controls_and_links(fixture_results):
    spec = charts.leaderboard_chart(fixture_results.leaderboard, "lesion_a", lambda i: f"../models/{i}.html")
    params = {p["name"]: p for p in spec["params"]}
    assert params["experiment"]["value"] == "lesion_a"
    assert params["experiment"]["bind"]["options"] == ["lung", "lesion_a", "lesion_b"]
    assert {"show_unet", "show_fpn", "initialisation"} <= set(params)
    text = json.dumps(spec)
    assert '"href"' in text and '"brush"' in text and "pareto_params" in text
    rows = next(iter(spec["datasets"].values()))
    assert all(row["url"] == f"../models/{row['id']}.html" for row in rows)
    assert len(rows) == 23  # failed models are in the table, not in the chart


def test_pareto_front():
    frame = pd.DataFrame({"params_m": [1, 2, 3, 4, 5], "dice": [0.5, 0.4, 0.7, 0.7, 0.9]})
    assert charts.pareto_front(frame, "params_m").tolist() == [True, False, True, False, True]


def test_banner_says_when_results_are_synthetic(generated):
    for page in SNAPSHOT_PAGES:
        text = (generated / page).read_text()
        assert "Synthetic results: not the paper's data" in text, page
        assert "made-up results fixture" in text


def test_a_missing_template_value_is_an_error_not_a_blank():
    template = environment().from_string("Dice {{ m.dice }}")
    with pytest.raises(jinja2.UndefinedError):
        template.render(m={})


def test_embed_cannot_be_closed_by_the_data():
    html = embed({"datasets": {"x": [{"id": "</script><script>alert(1)</script>"}]}}, "c")
    assert html.count("</script>") == 1


def test_missing_results_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"leaderboard.csv: is missing"):
        load_results(tmp_path / "results", tmp_path / "figures")


def test_malformed_leaderboard_names_the_file_and_columns(tmp_path):
    results, figures = small_fixture(tmp_path)
    board = pd.read_csv(results / "leaderboard.csv").drop(columns=["dice"])
    board.to_csv(results / "leaderboard.csv", index=False)
    with pytest.raises(DataError, match=r"leaderboard.csv: lacks the columns dice"):
        load_results(results, figures)


def test_stage_error_is_one_line_and_keeps_the_previous_site(tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("previous site")
    result = run_module(
        "pipeline.site_build",
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
def built_site(generated, tmp_path_factory) -> Path:
    public = tmp_path_factory.mktemp("site") / "public"
    build(generated, public, ROOT / "mkdocs.yml")
    return public


def test_strict_build_has_every_page_and_no_model_page_in_the_navigation(built_site, fixture_results):
    assert (built_site / "index.html").exists() and (built_site / "leaderboard" / "lung.html").exists()
    model_page = built_site / "models" / "lung-unet-resnet18-imagenet.html"
    best = fixture_results.summary["dice"]["best_model"]["lung"]["id"]
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
    assert len(csv) == 8 and set(csv["experiment"]) == {"lung"}
    records = json.loads((built_site / "downloads" / "leaderboard.json").read_text())
    assert {r["id"] for r in records} == set(fixture_results.models)


def test_vendored_javascript_is_one_copy_in_the_sources():
    vendor = ROOT / "site" / "assets" / "js" / "vendor"
    assert {p.name for p in vendor.glob("*.js")} >= {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"}
    assert len(list((vendor / "licenses").iterdir())) == 5  # the licences travel with them


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
    provenance = Provenance("rev", {}, "https://models.example.org/dvcstore/", cache)
    context = model_context(fixture_results, model_id, provenance)
    assert context["direct_url"] == "https://models.example.org/dvcstore/files/md5/ab/" + "c" * 30
    page = environment().get_template("model.md.j2").render(**context)
    assert "Direct link to the weights" in page and context["direct_url"] in page
    # A model the published remote does not hold yet gets no link, and says so.
    other = model_context(fixture_results, "lesion_a-unet-resnet18-random", provenance)
    assert other["direct_url"] is None
    assert "not in the published remote" in environment().get_template("model.md.j2").render(**other)
