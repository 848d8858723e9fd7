"""Stage ``site``: the results website, from results/ and figures/ to a static site in public/.

    python -m pipeline.site.build                 (as dvc.yaml runs it)
    python -m pipeline.site.build --no-mkdocs     (only the Markdown in build/docs/, e.g. for `mkdocs serve`)

Two steps, kept apart so the generated pages can be diffed and tested without a build:

1. generate: the hand-written sources of site/ are copied to build/docs/, then Jinja2 templates (templates/,
   StrictUndefined: a missing value is an error, never a blank; autoescaped: pipeline.site.format) write the
   home page, one leaderboard per experiment, the comparison, ranking and methods pages, the compare view and
   one page per model, each chart as an inline Vega spec (compiled from Altair's Vega-Lite when the site is
   built), and one small data file per model for the compare view;
2. build: ``mkdocs build --strict`` renders build/docs/ into public/.

The pages' contexts live by page kind: a model's page in pipeline.site.model_page, the comparisons and the
compare view in pipeline.site.compare_page, the "Try it on your scan" panel in pipeline.site.try_page, what every
page shares in pipeline.site.context; this module holds the home, leaderboard, methods, Get a model, Submit and
Cite pages, the page generator and the mkdocs build.

Both write to a staging folder swapped in at the end, so a failed run leaves the previous site intact.
The site works offline and from ``file://``: one vendored copy of vega, loaded only by pages
with charts; data inline or in generated ``.js`` files (never fetched); no web fonts; no instant navigation;
model pages reached by links and left out of the search index.
"""

import datetime
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import jinja2
import pandas as pd
import yaml
from markupsafe import Markup, escape

from pipeline.core import submissions
from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, DataError, run_stage
from pipeline.core.experiments import experiment as experiment_of
from pipeline.core.outputs import read_json, replace_directory
from pipeline.core.paths import (
    BROWSER_DIR,
    DOCS_DIR,
    DVC_CACHE,
    FIGURES_DIR,
    MKDOCS_CONFIG,
    MODELS_DIR,
    PARAMS_FILE,
    PROJECT_ROOT,
    PUBLIC_DIR,
    RESULTS_DIR,
    SCORES_DIR,
    SOURCES_DIR,
    TEMPLATES_DIR,
    TRAIN_INPUTS,
)
from pipeline.core.viewer import COLOURS, as_script
from pipeline.results.findings import INITIALISATION_EFFECT, LESION_EFFECT
from pipeline.results.ranking import tier_words
from pipeline.site import charts, try_page
from pipeline.site import format as site_format
from pipeline.site import tables as site_tables
from pipeline.site.compare_page import compare_contexts, compare_page_context
from pipeline.site.context import Provenance, chart_note, page_banner, records
from pipeline.site.data import (
    ARCHITECTURE_NAMES,
    EXPERIMENT_BLURBS,
    EXPERIMENT_NAMES,
    SYNTHETIC_SOURCES,
    Results,
    load_results,
    write_downloads,
)
from pipeline.site.model_page import model_context, model_data, model_entry, published_weights, submission_context

PAPER = {
    "arxiv": "https://arxiv.org/abs/2009.06412",
    "doi": "10.48550/arXiv.2009.06412",
    "code": "https://github.com/pbizopoulos/"
    "comprehensive-comparison-of-deep-learning-models-for-lung-and-covid-19-lesion-segmentation-in-ct",
}
# Files the pipeline itself rewrites before this stage runs: a difference there is not an uncommitted change.
PIPELINE_OUTPUTS = ("dvc.lock", "results", "speed.json", "models/train_inputs.json")


def git_revision(root: Path = Path(".")) -> str:
    """HEAD, with "+ uncommitted changes" only when tracked code or configuration differs from it (the
    pipeline's own outputs, rewritten by the stages before this one, do not count)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        excluded = [f":(exclude){path}" for path in PIPELINE_OUTPUTS]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
                               cwd=root, capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def embed(spec: dict | None, chart_id: str) -> Markup:
    """A chart as a placeholder div and its Vega spec; site.js renders it. The spec is serialised so that no
    string in its data can end or comment out the script element (site_format.script_json); it is JSON for a
    script, not Markdown, and trusted as such."""
    if spec is None:
        return Markup("")
    text = site_format.script_json(spec)
    return Markup(
        f'<div class="vega-chart" id="{escape(chart_id)}"></div>\n\n'
        f'<script type="application/json" class="vega-spec" data-target="{escape(chart_id)}">{text}</script>\n'
    )


def environment(confidence: float) -> jinja2.Environment:
    """The pages' Jinja environment; ``confidence`` (params evaluate.confidence) sets every level a page states."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Every value is escaped for Markdown and HTML (pipeline.site.format) unless it is marked as trusted.
        autoescape=True,
        finalize=site_format.finalize,
    )
    env.filters.update(number=site_format.number, signed=site_format.signed)
    env.globals.update(plural=site_format.plural)
    env.globals.update(
        interval=site_format.interval,
        code_block=site_format.code_block,
        embed=embed,
        experiment_names=EXPERIMENT_NAMES,
        architecture_names=ARCHITECTURE_NAMES,
        experiment_blurbs=EXPERIMENT_BLURBS,
        paper=PAPER,
        tier_words=tier_words,
        level=f"{confidence:.0%}",
        alpha=f"{1 - confidence:.2g}",
    )
    return env


# ---------------------------------------------------------------- page contexts


def counts(board: pd.DataFrame) -> dict:
    status = board["status"].value_counts()
    return {"models": len(board), "ok": int(status.get("ok", 0)), "degenerate": int(status.get("degenerate", 0)),
            "failed": int(status.get("failed", 0))}  # fmt: skip


EMPTY_STATS = {"mean": None, "std": None, "median": None, "n": 0}


def home_context(results: Results) -> dict:
    summary, board = results.summary, results.grid
    rows = []
    for experiment in results.experiments:
        group = board[board["experiment"] == experiment]
        rows.append({
            "experiment": experiment, "counts": counts(group), "leader": summary["leaders"].get(experiment),
            "stats": summary["dice"]["by_experiment"].get(experiment, EMPTY_STATS),
            "stability": summary["rankings"]["dice"].get(experiment),
            "seeds": summary["seed_variance"].get(experiment, {"models": 0}),
            "paper": summary["paper_comparison"].get(experiment, {}).get("all", {}),
            "paper_best": summary["paper"]["best"].get(experiment, {}),
        })  # fmt: skip
    effects = [e for e in summary["effects"] if e["effect"] in (INITIALISATION_EFFECT, LESION_EFFECT)]
    return {
        "banner": page_banner(results), "counts": counts(board), "rows": rows, "experiments": results.experiments,
        "architectures": results.present("architecture"), "encoders": results.present("encoder"),
        "weights": results.present("encoder_weights"), "summary": summary,
        "forest": charts.forest_plot(effects, chart_note(results), "Paired effects on Dice"), "effects": effects,
    }  # fmt: skip


def leaderboard_context(results: Results, experiment: str, model_href: Callable[[str], str]) -> dict:
    board = results.leaderboard
    rows = board[board["experiment"] == experiment].copy()
    grid = rows[rows["source"] == "grid"]
    order = {"ok": 0, "degenerate": 1, "failed": 2}
    rows = rows.assign(_status=rows["status"].map(order)).sort_values(["_status", "rank", "id"], na_position="last")
    device = results.summary["speed"].get("device") or "the machine that timed them"
    note = chart_note(results)
    ranking = results.summary["rankings"]["dice"].get(experiment)
    return {
        "banner": page_banner(results), "experiment": experiment, "counts": counts(grid), "device": device,
        "submitted": len(rows) - len(grid),
        "table": site_tables.leaderboard_table(rows.drop(columns="_status"), model_href, device, results.synthetic,
                                               f"{results.summary['bootstrap']['confidence']:.0%}"),
        "chart": charts.leaderboard_chart(board, experiment, model_href, device, note),
        "blobs": charts.blob_plot(results.rankings, ranking["blobs"], experiment, "dice", note, model_href)
        if ranking else None,
        "ranking": ranking, "seeds": results.summary["seed_variance"].get(experiment, {"models": 0}),
        "excluded": [e for e in results.summary["excluded"] if e["id"].startswith(f"{experiment}-")],
        "summary": results.summary,
    }  # fmt: skip


def _js_data(variable: str, key: str, value) -> str:
    """A .js file that registers ``value`` under ``window[variable][key]``: data a page can load from
    ``file://`` (browsers refuse fetch() there, not <script>)."""
    text = site_format.script_json(value)
    return f"(window.{variable} = window.{variable} || {{}})[{json.dumps(key)}] = {text};\n"


def protocol_rows(results: Results, provenance: Provenance) -> list[dict]:
    """This build's protocol set beside the paper's, row by row: the paper's from conf/config.yaml (the
    reference configuration), this build's from what made the results (train_inputs.json, results/)."""
    from pipeline.core import profiles
    from pipeline.core.paths import CONF_DIR

    paper = profiles.compose("paper", PROJECT_ROOT / CONF_DIR)
    train, preprocess = provenance.train_inputs.get("train", {}), results.summary["preprocess"]
    grid = results.grid

    def shape(experiments, architectures, encoders, weights) -> str:
        counts = [len(experiments), len(architectures), len(encoders), len(weights)]
        return f"{' x '.join(map(str, counts))} = {counts[0] * counts[1] * counts[2] * counts[3]} models"

    ours = [shape(results.experiments, *(list(dict.fromkeys(grid[c])) for c in
                                        ("architecture", "encoder", "encoder_weights")))]  # fmt: skip
    theirs = [shape(*(paper["grid"][k] for k in ("experiments", "architectures", "encoders", "weights")))]
    rows = [
        ("data", f"{SYNTHETIC_SOURCES.get(results.data_source, results.data_source)} (profile {results.profile})",
         "the MedSeg and Radiopaedia CT files"),
        ("grid (experiments x architectures x encoders x initialisations)", ours[0], theirs[0]),
        ("working size (px)", preprocess["size"], paper["preprocess"]["size"]),
    ]  # fmt: skip
    for key, label in (("epochs", "epochs"), ("batch_size", "batch size"), ("learning_rate", "learning rate"),
                       ("loss", "loss")):  # fmt: skip
        rows.append((label, train.get(key, "not recorded"), paper["train"][key]))

    def augmentation(values: dict) -> str:
        if not {"rotation_deg", "scale_min", "scale_max"} <= set(values):
            return "not recorded"
        return (f"[-{values['rotation_deg']}, {values['rotation_deg']}) degrees, "
                f"[{values['scale_min']}, {values['scale_max']})")  # fmt: skip

    rows.append(("rotation, scale (augmentation)", augmentation(train.get("augment", {})),
                 augmentation(paper["train"]["augment"])))  # fmt: skip
    return [{"item": item, "here": str(here), "paper": str(there), "same": str(here) == str(there)}
            for item, here, there in rows]  # fmt: skip


# The modules the Methods page's metric cards name: their paths come from the code, so a module that moves
# moves its card's path with it.
CARD_MODULES = ("pipeline.evaluation.metrics", "pipeline.evaluation.speed", "pipeline.results.findings",
                "pipeline.results.ranking", "pipeline.results.recipes")  # fmt: skip


def module_paths() -> dict[str, str]:
    """Short name -> the source file of each of ``CARD_MODULES``, relative to the project (not imported)."""
    import importlib.util

    return {name.rsplit(".", 1)[1]: Path(importlib.util.find_spec(name).origin).relative_to(PROJECT_ROOT).as_posix()
            for name in CARD_MODULES}  # fmt: skip


def methods_context(results: Results, provenance: Provenance) -> dict:
    summary = results.summary
    return {
        "protocol": protocol_rows(results, provenance),
        "banner": page_banner(results), "summary": summary, "implementation": summary["implementation"],
        "volumes": summary["test_volumes"], "smallest_p": summary["smallest_wilcoxon_p"],
        "tolerances": summary["tolerances"], "speed": summary["speed"], "bootstrap": summary["bootstrap"],
        "voxel": summary.get("voxel_size") or {}, "separations": summary["separations"], "source": module_paths(),
    }  # fmt: skip


def citation(provenance: Provenance) -> dict:
    """CITATION.cff as published with the site (its repository filled in from site.repo_url), and the BibTeX of
    the benchmark made from it."""
    cff = yaml.safe_load((PROJECT_ROOT / "CITATION.cff").read_text())
    if provenance.repo_url:
        cff.setdefault("repository-code", provenance.repo_url)
        cff.setdefault("url", provenance.repo_url)
    authors = " and ".join(a.get("name") or f"{a.get('family-names', '')}, {a.get('given-names', '')}"
                           for a in cff.get("authors", []))  # fmt: skip
    year = str(cff.get("date-released", ""))[:4]
    fields = {"title": "{" + cff["title"] + "}", "author": "{" + authors + "}", "year": year,
              "version": cff.get("version", ""),
              **({"url": cff["url"], "howpublished": "{\\url{" + cff["url"] + "}}"} if cff.get("url") else {}),
              "note": "Software; cite the profile and data source of the numbers used"}  # fmt: skip
    bibtex = "@software{covid_ct_benchmark,\n" + ",\n".join(
        f"  {key:<7} = {{{value}}}" if not str(value).startswith("{") else f"  {key:<7} = {value}"
        for key, value in fields.items()) + "\n}"  # fmt: skip
    return {"cff": cff, "bibtex": bibtex}


def get_a_model_context(results: Results, provenance: Provenance) -> dict:
    """Get a model: the repository and remote where they are set, examples taken from this build's models."""
    ok = results.grid[results.grid["status"] == "ok"]
    example = str(ok.sort_values(["rank", "id"]).iloc[0]["id"]) if not ok.empty else str(results.grid.iloc[0]["id"])
    return {"example": example, "repo_url": provenance.repo_url, "remote_url": provenance.remote_url}


def submit_context(results: Results, provenance: Provenance) -> dict:
    """The "Submit your model" page: its rules come from the code that applies them."""
    from pipeline.data import rawdata

    board = results.leaderboard
    preprocess = results.summary["preprocess"]
    example = get_a_model_context(results, provenance)["example"]
    return {
        "repo_url": provenance.repo_url, "example": example,
        "example_experiment": example.split("-")[0], "margin": results.summary["separations"]["relevant_difference"],
        "banner": page_banner(results),
        "baselines": int(((board["source"] == "grid") & (board["status"] == "ok")).sum()),
        "submitted": int((board["source"] == "external").sum()), "volumes": results.summary["test_volumes"],
        "image_dir": rawdata.TEST_IMAGE_DIR, "lung_dir": rawdata.TEST_LUNG_DIR,
        "name_length": submissions.NAME_LENGTH, "affine_atol": submissions.AFFINE_ATOL,
        "affine_rtol": submissions.AFFINE_RTOL, "ignored_names": submissions.IGNORED_NAMES,
        "ignored_suffixes": submissions.IGNORED_SUFFIXES, "size": preprocess["size"],
        "hu_offset": preprocess["hu_offset"], "hu_scale": preprocess["hu_scale"],
        # the build's experiment whose models are given the lungs (lesion_b), named where the contracts differ
        "lungs_experiment": next((name for name in dict.fromkeys(board["experiment"])
                                  if experiment_of(name).inside_lungs), None),
    }  # fmt: skip


# ---------------------------------------------------------------- generation and build


def model_href_from(page_dir: str) -> Callable[[str], str]:
    """Links to model pages from a page in ``page_dir`` (e.g. "leaderboard"), as the offline build names
    them: no directory URLs, so ``models/<id>.html``."""
    up = "../" * (len(Path(page_dir).parts) if page_dir else 0)
    return lambda model_id: f"{up}models/{model_id}.html"


def footer(results: Results, provenance: Provenance) -> str:
    """The footer of every page (mkdocs' ``copyright``): build, revision, data, and the ways out."""
    revision = escape(provenance.revision[:12] + (" (modified)" if "uncommitted" in provenance.revision else ""))
    source = escape(SYNTHETIC_SOURCES.get(results.data_source, results.data_source))
    repo = f' · <a href="{escape(provenance.repo_url)}">repository</a>' if provenance.repo_url else ""
    return (
        f"Built {escape(provenance.built)} from revision {revision} · data: {source} "
        f"(<code>{escape(results.data_source)}</code>, profile <code>{escape(results.profile)}</code>)<br>"
        f'Reproduces <a href="{PAPER["arxiv"]}">Bizopoulos et al., arXiv 2009.06412</a> '
        f'(<a href="https://doi.org/{PAPER["doi"]}">doi:{PAPER["doi"]}</a>) · '
        f'<a href="{PAPER["code"]}">original code</a>{repo} · '
        "code and weights MIT; data under their providers' terms"
    )


def write_submission_viewer(payloads: dict[str, bytes], viewer: Path) -> None:
    """A submission's viewer data re-serialised from its verified payloads (``Results.submission_viewers``):
    a scan's CT only where the grid's figures did not already write that file (the same CT: never overwritten)."""
    viewer.mkdir(parents=True, exist_ok=True)
    for key, payload in payloads.items():
        if not (key.startswith("ct-") and (viewer / f"{key}.js").exists()):
            (viewer / f"{key}.js").write_text(as_script(key, payload))


def try_context(results: Results, provenance: Provenance) -> dict:
    """try.html: the panel with a picker of every model the browser can run, in leaderboard order."""
    weights = published_weights(provenance)
    order = {name: position for position, name in enumerate(results.experiments)}
    board = results.leaderboard.assign(_order=results.leaderboard["experiment"].map(order))
    board = board.sort_values(["_order", "rank", "id"], na_position="last")
    options = [try_page.panel(results.browser, results.leaderboard, model_id, weights) for model_id in board["id"]
               if results.models[model_id].evaluated and not results.models[model_id].external]  # fmt: skip
    options = [option for option in options if option is not None]
    return {"banner": page_banner(results), "options": options, "try_panel": options[0] if options else None}


def generate(results: Results, provenance: Provenance, docs: Path, sources: Path = SOURCES_DIR) -> int:
    """Write every page of the site into ``docs`` (which must be empty); returns the number of pages."""
    env = environment(results.summary["bootstrap"]["confidence"])
    shutil.copytree(sources, docs, dirs_exist_ok=True)
    pages = 0

    def write(relative: str, template: str, **context) -> None:
        nonlocal pages
        path = docs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(**context))
        pages += 1

    write("index.md", "home.md.j2", **home_context(results))
    for experiment in results.experiments:
        write(f"leaderboard/{experiment}.md", "leaderboard.md.j2",
              **leaderboard_context(results, experiment, model_href_from("leaderboard")))  # fmt: skip
    for name, context in compare_contexts(results, model_href_from("compare")).items():
        write(f"compare/{name}.md", f"compare/{name}.md.j2", **context)
    write("compare.md", "compare.md.j2", **compare_page_context(results))
    write("methods.md", "methods.md.j2", **methods_context(results, provenance))
    write("models/index.md", "models_index.md.j2", banner=page_banner(results), rows=records(results.leaderboard),
          experiments=results.experiments)  # fmt: skip
    data = docs / "data" / "models"
    data.mkdir(parents=True)
    for model_id, model in results.models.items():
        if model.external:
            write(f"models/{model_id}.md", "submission.md.j2", **submission_context(results, model_id))
        else:
            write(f"models/{model_id}.md", "model.md.j2", **model_context(results, model_id, provenance))
        (data / f"{model_id}.js").write_text(_js_data("benchmarkModels", model_id, model_data(results, model_id)))
    index = [model_entry(results, r) for r in records(results.leaderboard)]
    (docs / "data" / "models.js").write_text(_js_data("benchmarkIndex", "models", index))
    for kind in ("masks", "filters"):
        if (results.figures / kind).is_dir():
            shutil.copytree(results.figures / kind, docs / "img" / kind)
    if results.viewer:  # the viewer's volumes: one CT per volume shown, one small label volume per model
        shutil.copytree(results.figures / "viewer", docs / "viewer", ignore=shutil.ignore_patterns("*.json"))
    for payloads in (results.submission_viewers or {}).values():
        write_submission_viewer(payloads, docs / "viewer")
    if results.browser:
        try_page.copy_graphs(results.browser_dir, docs)
    write("try.md", "try.md.j2", **try_context(results, provenance))
    write("submit.md", "submit.md.j2", **submit_context(results, provenance))
    palette = "".join(f".mask-key.{name} {{ background: rgb{colour}; }}\n" for name, colour in COLOURS.items())
    (docs / "assets" / "css" / "palette.css").write_text("/* Written by the site build from COLOURS. */\n" + palette)
    write("get-a-model.md", "get-a-model.md.j2", **get_a_model_context(results, provenance))
    write_downloads(results, docs / "downloads")
    cited = citation(provenance)
    write("cite.md", "cite.md.j2", banner=page_banner(results), repo_url=provenance.repo_url, **cited)
    (docs / "downloads" / "CITATION.cff").write_text(yaml.safe_dump(cited["cff"], sort_keys=False, allow_unicode=True))
    return pages


def navigation(experiments: list[str], config: Path = MKDOCS_CONFIG) -> list:
    """mkdocs.yml's navigation with one leaderboard per experiment of these results (a grid may leave some
    out; a navigation entry to a missing page fails a strict build)."""
    nav = yaml.safe_load(Path(config).read_text())["nav"]
    leaderboards = [{EXPERIMENT_NAMES[e]: f"leaderboard/{e}.md"} for e in experiments]
    leaderboards.append({"All models": "models/index.md"})
    return [{"Leaderboards": leaderboards} if "Leaderboards" in entry else entry for entry in nav]


class _Warnings(logging.Handler):
    """Collects what mkdocs warns about: in strict mode each warning aborts the build, and the abort alone
    does not say which page and which link."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))


def build(docs: Path, public: Path, config: Path = MKDOCS_CONFIG, experiments: list[str] | None = None,
          extra: dict | None = None) -> None:  # fmt: skip
    """``mkdocs build --strict`` of ``docs`` into ``public``; a warning fails the build, and the error names it.
    ``extra`` overrides settings of mkdocs.yml (the footer, the synthetic-data tag)."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    warnings = _Warnings()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(warnings)
    try:
        overrides = {"nav": navigation(experiments, config)} if experiments else {}
        overrides.update(extra or {})
        settings = load_config(
            str(config), docs_dir=str(docs.resolve()), site_dir=str(public.resolve()), strict=True, **overrides
        )
        mkdocs_build(settings)
    except (Abort, ConfigurationError) as error:
        first = f": {warnings.messages[0]}" if warnings.messages else ""
        more = f" (and {len(warnings.messages) - 1} more warnings)" if len(warnings.messages) > 1 else ""
        raise DataError(config, f"mkdocs build failed ({' '.join(str(error).split())}){first}{more}") from None
    finally:
        logger.removeHandler(warnings)


def build_settings(results: Results, provenance: Provenance, config: Path = MKDOCS_CONFIG) -> dict:
    """What a build adds to mkdocs.yml: the footer, and the slim synthetic-data tag of the header."""
    extra = yaml.safe_load(Path(config).read_text()).get("extra", {})
    tag = f"Synthetic data ({results.profile}): tests the pipeline, not patients" if results.synthetic else ""
    return {"copyright": footer(results, provenance), "extra": {**extra, "data_tag": tag}}


def load_provenance(params_file: Path, train_inputs: Path = TRAIN_INPUTS) -> Provenance:
    params = load_params(params_file)
    inputs = read_json(train_inputs, "run `dvc repro train_inputs`") if train_inputs.exists() else {}
    built = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Provenance(git_revision(), inputs, params.site.remote_url, DVC_CACHE, params.site.repo_url, built)


def main() -> None:
    parser = ArgumentParser(description="Build the results website from results/ into public/.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--figures", type=Path, default=FIGURES_DIR)
    parser.add_argument("--scores", type=Path, default=SCORES_DIR, help="the submissions' viewer data")
    parser.add_argument("--browser", type=Path, default=BROWSER_DIR, help="the models' browser graphs")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="the weights a build without a remote ships")
    parser.add_argument("--docs", type=Path, default=DOCS_DIR, help="where the generated Markdown goes")
    parser.add_argument("--out", type=Path, default=PUBLIC_DIR)
    parser.add_argument("--no-mkdocs", action="store_true", help="only generate the Markdown")
    args = parser.parse_args()
    started = time.perf_counter()
    results = load_results(args.results, args.figures, args.scores, args.browser)
    provenance = load_provenance(args.params)
    with replace_directory(args.docs) as staging:
        pages = generate(results, provenance, staging)
    generated = time.perf_counter() - started
    shipped = 0
    if not args.no_mkdocs:
        with replace_directory(args.out) as staging:
            build(args.docs, staging, experiments=results.experiments, extra=build_settings(results, provenance))
            # a build without a published remote ships its own models' weights for the browser (hard links)
            shipped = try_page.place_weights(results.browser, staging, args.models) if not provenance.remote_url else 0
    total = time.perf_counter() - started
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 1e6 if args.out.exists() else 0
    print(
        f"site: {pages} pages from {len(results.models)} models ({results.data_source}, profile "
        f"{results.profile}); generate {generated:.1f}s, total {total:.1f}s -> {args.out}/ ({size:.1f} MB"
        + (
            f", of which the models' weights for the browser {shipped / 1e6:.0f} MB"
            if not args.no_mkdocs and shipped
            else ""
        )
        + ")"
    )


if __name__ == "__main__":
    run_stage(main)
