"""Stage ``site``: the results website, from results/ and figures/ to a static site in public/.

    python -m pipeline.site_build                 (as dvc.yaml runs it)
    python -m pipeline.site_build --no-mkdocs     (only the Markdown in build/docs/, e.g. for `mkdocs serve`)

Two steps, kept apart so the generated pages can be diffed and tested without a build:

1. generate: the hand-written sources of site/ are copied to build/docs/, then Jinja2 templates (templates/,
   StrictUndefined: a missing value is an error, never a blank) write the home page, one leaderboard per
   experiment, the comparison pages and one page per model, each chart as an inline Vega-Lite spec;
2. build: ``mkdocs build --strict`` renders build/docs/ into public/.

Both write to a staging folder swapped in at the end, so a failed run leaves the previous site intact.
The site works offline and from ``file://``: one vendored copy of vega, vega-lite and vega-embed, data inline,
no web fonts, no instant navigation, and model pages reached by links (not all listed in the navigation).
"""

import argparse
import json
import logging
import math
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from pipeline import charts, site_format
from pipeline.aggregate import RESULTS_DIR
from pipeline.config import PARAMS_FILE, load_params
from pipeline.errors import DataError, run_stage
from pipeline.figures import FIGURES_DIR
from pipeline.outputs import read_json, replace_directory
from pipeline.publish import direct_url
from pipeline.site_data import (
    ARCHITECTURE_NAMES,
    EXPERIMENT_BLURBS,
    EXPERIMENT_NAMES,
    SYNTHETIC_SOURCES,
    Results,
    intensity,
    load_results,
    write_downloads,
)

SOURCES_DIR = Path("site")
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DOCS_DIR = Path("build/docs")
PUBLIC_DIR = Path("public")
MKDOCS_CONFIG = Path("mkdocs.yml")
TRAIN_INPUTS = Path("models/train_inputs.json")


@dataclass(frozen=True)
class Provenance:
    """Where the results come from, printed on every model page."""

    revision: str  # git commit of the project (with "+ uncommitted changes" when dirty)
    train_inputs: dict  # models/train_inputs.json: code and data hashes, training params
    remote_url: str  # public address of the published DVC remote, "" when there is none
    dvc_cache: Path  # where the models' folder manifests are, to find direct links


def git_revision(root: Path = Path(".")) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def embed(spec: dict, chart_id: str) -> Markup:
    """A chart as a placeholder div and its spec; charts.js renders it. ``</`` is escaped so no string in
    the data can close the script element (the spec is JSON for a script, not Markdown: trusted as it is)."""
    text = json.dumps(spec, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    return Markup(
        f'<div class="vega-chart" id="{escape(chart_id)}"></div>\n\n'
        f'<script type="application/json" class="vega-spec" data-target="{escape(chart_id)}">{text}</script>\n'
    )


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Every value is escaped for Markdown and HTML (pipeline.site_format) unless it is marked as trusted.
        autoescape=True,
        finalize=site_format.finalize,
    )
    env.filters.update(number=site_format.number)
    env.globals.update(
        interval=site_format.interval,
        code_block=site_format.code_block,
        embed=embed,
        experiment_names=EXPERIMENT_NAMES,
        architecture_names=ARCHITECTURE_NAMES,
        experiment_blurbs=EXPERIMENT_BLURBS,
    )
    return env


# ---------------------------------------------------------------- page contexts


def _banner(results: Results) -> dict:
    return {
        "synthetic": results.synthetic,
        "source": SYNTHETIC_SOURCES.get(results.data_source, results.data_source),
        "data_source": results.data_source,
        "profile": results.profile,
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def home_context(results: Results) -> dict:
    summary = results.summary
    findings = []
    for experiment in results.experiments:
        # An experiment whose models all failed has no statistics: show it with empty cells.
        empty = {"mean": None, "std": None, "n": 0, "wins": 0}
        best = summary["dice"]["best_model"].get(experiment)
        ours = summary["dice"]["by_experiment"].get(experiment, empty)
        paper_best = summary["paper"]["best_reported_dice"].get(experiment, {})
        paper_mean = summary["paper"]["mean_dice_by_experiment"].get(experiment, {})
        ours_paper = summary["paper_dice"]["by_experiment"].get(experiment, empty)
        init = summary["dice"]["imagenet_vs_random"].get(experiment, {}).get("imagenet_minus_random", empty)
        findings.append(
            {
                "experiment": experiment,
                "best": best,
                "mean": ours,
                "paper_best": paper_best,
                "paper_mean": paper_mean,
                "ours_paper_mean": ours_paper,
                "init": init,
            }
        )
    lesions = summary["dice"]["lesion_b_vs_lesion_a"].get("lesion_b_minus_lesion_a")
    board = results.leaderboard
    return {
        "banner": _banner(results),
        "models": len(board),
        "failed": int((board["status"] != "ok").sum()),
        "experiments": results.experiments,
        "architectures": sorted(set(board["architecture"]), key=list(ARCHITECTURE_NAMES).index),
        "encoders": list(dict.fromkeys(board["encoder"])),
        "weights": list(dict.fromkeys(board["encoder_weights"])),
        "findings": findings,
        "lesions": lesions,
        "paper_lesions": _paper_lesion_gap(summary),
    }


def _paper_lesion_gap(summary: dict) -> float | None:
    means = summary["paper"]["mean_dice_by_experiment"]
    if "lesion_a" in means and "lesion_b" in means:
        return round(means["lesion_b"]["mean"] - means["lesion_a"]["mean"], 2)
    return None


def leaderboard_context(results: Results, experiment: str, model_href: Callable[[str], str]) -> dict:
    rows = results.leaderboard[results.leaderboard["experiment"] == experiment]
    rows = rows.sort_values("dice", ascending=False, na_position="last")
    return {
        "banner": _banner(results),
        "experiment": experiment,
        "rows": _records(rows),
        "failed": int((rows["status"] != "ok").sum()),
        "chart": charts.leaderboard_chart(results.leaderboard, experiment, model_href),
    }


def model_context(results: Results, model_id: str, provenance: Provenance) -> dict:
    model = results.models[model_id]
    metrics = model.metrics
    ok = metrics["status"] == "ok"
    direct = None
    if provenance.remote_url:  # a plain http(s) URL (params validation), a content hash appended
        link = direct_url(provenance.remote_url, model_id, provenance.dvc_cache)
        direct = Markup(link) if link else None
    rows = results.leaderboard
    same_experiment = rows[(rows["experiment"] == metrics["experiment"]) & (rows["status"] == "ok")]
    rank = None
    if ok and len(same_experiment):
        rank = int((same_experiment["dice"] > metrics["dice"]).sum()) + 1
    return {
        "banner": _banner(results),
        "m": metrics,
        "ok": ok,
        "rank": rank,
        "ranked": len(same_experiment),
        "volumes": _records(model.volumes) if ok else [],
        "loss_chart": charts.loss_curves(model.history, metrics["best_epoch"]) if ok else None,
        "volume_chart": charts.volume_bars(model.volumes) if ok else None,
        "mask_image": ok and (results.figures / "masks" / f"{model_id}.png").exists(),
        "slices": results.slices.get(metrics["experiment"], []),
        "direct_url": direct,
        "remote_url": provenance.remote_url,
        "revision": provenance.revision,
        "train_inputs": provenance.train_inputs,
        "train_params": json.dumps(provenance.train_inputs.get("train", {}), indent=2, sort_keys=True),
    }


def _pairs(board: pd.DataFrame, axis: str, first: str, second: str, keys: list[str]) -> pd.DataFrame:
    ok = board[board["status"] == "ok"]
    a = ok[ok[axis] == first].set_index(keys)["dice"].rename(first)
    b = ok[ok[axis] == second].set_index(keys)["dice"].rename(second)
    return pd.concat([a, b], axis=1, join="inner").reset_index()


def curves_frame(results: Results) -> pd.DataFrame:
    """Mean and std of each loss per architecture, experiment and epoch, over the finished models."""
    frames = []
    for _model_id, model in results.models.items():
        if model.history.empty:
            continue
        metrics = model.metrics
        frame = model.history.melt(
            id_vars="epoch", value_vars=["train_loss", "val_loss"], var_name="split", value_name="loss"
        )
        frame["split"] = frame["split"].map({"train_loss": "train", "val_loss": "validation"})
        frames.append(frame.assign(architecture=metrics["architecture"], experiment=metrics["experiment"]))
    if not frames:
        return pd.DataFrame(columns=["experiment", "architecture", "split", "epoch", "mean", "std", "low", "high"])
    grouped = pd.concat(frames).groupby(["experiment", "architecture", "split", "epoch"])["loss"]
    curves = grouped.agg(["mean", "std"]).reset_index().fillna({"std": 0.0})
    curves["low"], curves["high"] = curves["mean"] - curves["std"], curves["mean"] + curves["std"]
    return curves.round(6)


def best_and_worst(results: Results) -> list[dict]:
    """Per experiment and architecture, the best and worst encoder (random init where present), as in Fig. 3."""
    board = results.leaderboard[results.leaderboard["status"] == "ok"]
    if "random" in set(board["encoder_weights"]):
        board = board[board["encoder_weights"] == "random"]
    out = []
    for experiment in results.experiments:
        for architecture in ARCHITECTURE_NAMES:
            group = board[(board["experiment"] == experiment) & (board["architecture"] == architecture)]
            if group.empty:
                continue
            best, worst = group.loc[group["dice"].idxmax()], group.loc[group["dice"].idxmin()]
            out.append(
                {
                    "experiment": experiment,
                    "architecture": architecture,
                    "best": best.to_dict(),
                    "worst": worst.to_dict(),
                }
            )
    return out


def compare_contexts(results: Results, model_href: Callable[[str], str]) -> dict[str, dict]:
    """One context per comparison page (template compare/<name>.md.j2)."""
    board, summary, banner = results.leaderboard, results.summary, _banner(results)
    from scipy import stats  # only this page needs it

    correlations = []
    for experiment in results.experiments:
        ok = board[(board["experiment"] == experiment) & (board["status"] == "ok")]
        if len(ok) >= 3 and ok["params_m"].nunique() > 1 and ok["dice"].nunique() > 1:
            test = stats.spearmanr(ok["params_m"], ok["dice"])
            correlations.append(
                {"experiment": experiment, "rho": float(test.statistic), "p": float(test.pvalue), "n": len(ok)}
            )
    init_pairs = _pairs(board, "encoder_weights", "random", "imagenet", ["experiment", "architecture", "encoder"])
    lesion_pairs = _pairs(board, "experiment", "lesion_a", "lesion_b", ["architecture", "encoder", "encoder_weights"])
    filters = sorted(p.stem for p in (results.figures / "filters").glob("*.png"))
    return {
        "architectures": {
            "banner": banner,
            "box": charts.box_plots(board, "architecture", "Dice per architecture"),
            "ours": summary["dice"]["by_architecture"],
            "paper": summary["paper"]["mean_dice_by_architecture"],
            "experiments": results.experiments,
        },
        "encoders": {
            "banner": banner,
            "experiments": results.experiments,
            "heatmaps": {e: charts.encoder_heatmap(board, e, model_href) for e in results.experiments},
            "ours": summary["dice"]["by_encoder"],
        },
        "initialisation": {
            "banner": banner,
            "box": charts.box_plots(board, "encoder_weights", "Dice per initialisation"),
            "pairs": len(init_pairs),
            "scatter": charts.paired_scatter(
                init_pairs,
                "random",
                "imagenet",
                "Dice, random init",
                "Dice, ImageNet init",
                "Same model, two initialisations",
            ),
            "findings": summary["dice"]["imagenet_vs_random"],
            "experiments": results.experiments,
            "filters": filters,
        },
        "lesions": {
            "banner": banner,
            "pairs": len(lesion_pairs),
            "scatter": charts.paired_scatter(
                lesion_pairs,
                "lesion_a",
                "lesion_b",
                "Dice, lesion A",
                "Dice, lesion B",
                "Same model, without and with the lung mask",
            ),
            "ours": summary["dice"]["lesion_b_vs_lesion_a"],
            "paper_gap": _paper_lesion_gap(summary),
        },
        "training": {"banner": banner, "curves": charts.mean_std_curves(curves_frame(results))},
        "figures": {
            "banner": banner,
            "params": charts.dice_vs_params(board, model_href),
            "correlations": correlations,
            "histograms": charts.intensity_histograms(intensity(results)),
            "masks": best_and_worst(results),
            "slices": results.slices,
        },
    }


# ---------------------------------------------------------------- generation and build


def model_href_from(page_dir: str) -> Callable[[str], str]:
    """Links to model pages from a page in ``page_dir`` (e.g. "leaderboard"), as the offline build names
    them: no directory URLs, so ``models/<id>.html``."""
    up = "../" * (len(Path(page_dir).parts) if page_dir else 0)
    return lambda model_id: f"{up}models/{model_id}.html"


def generate(results: Results, provenance: Provenance, docs: Path, sources: Path = SOURCES_DIR) -> int:
    """Write every page of the site into ``docs`` (which must be empty); returns the number of pages."""
    env = environment()
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
        write(
            f"leaderboard/{experiment}.md",
            "leaderboard.md.j2",
            **leaderboard_context(results, experiment, model_href_from("leaderboard")),
        )
    for name, context in compare_contexts(results, model_href_from("compare")).items():
        write(f"compare/{name}.md", f"compare/{name}.md.j2", **context)
    write(
        "models/index.md",
        "models_index.md.j2",
        banner=_banner(results),
        rows=_records(results.leaderboard),
        experiments=results.experiments,
    )
    for model_id in results.models:
        write(f"models/{model_id}.md", "model.md.j2", **model_context(results, model_id, provenance))
    for kind in ("masks", "filters"):
        if (results.figures / kind).is_dir():
            shutil.copytree(results.figures / kind, docs / "img" / kind)
    write_downloads(results, docs / "downloads")
    return pages


def navigation(experiments: list[str], config: Path = MKDOCS_CONFIG) -> list:
    """mkdocs.yml's navigation with one leaderboard per experiment of these results (a grid may leave some
    out; a navigation entry to a missing page fails a strict build)."""
    import yaml

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


def build(docs: Path, public: Path, config: Path = MKDOCS_CONFIG, experiments: list[str] | None = None) -> None:
    """``mkdocs build --strict`` of ``docs`` into ``public``; a warning fails the build, and the error names it."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    warnings = _Warnings()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(warnings)
    try:
        overrides = {"nav": navigation(experiments, config)} if experiments else {}
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


def load_provenance(params_file: Path, train_inputs: Path = TRAIN_INPUTS) -> Provenance:
    params = load_params(params_file)
    inputs = read_json(train_inputs, "run `dvc repro train_inputs`") if train_inputs.exists() else {}
    return Provenance(git_revision(), inputs, params.site.remote_url, Path(".dvc/cache"))


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the results website from results/ into public/.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--figures", type=Path, default=FIGURES_DIR)
    parser.add_argument("--docs", type=Path, default=DOCS_DIR, help="where the generated Markdown goes")
    parser.add_argument("--out", type=Path, default=PUBLIC_DIR)
    parser.add_argument("--no-mkdocs", action="store_true", help="only generate the Markdown")
    args = parser.parse_args()
    started = time.perf_counter()
    results = load_results(args.results, args.figures)
    provenance = load_provenance(args.params)
    with replace_directory(args.docs) as staging:
        pages = generate(results, provenance, staging)
    generated = time.perf_counter() - started
    if not args.no_mkdocs:
        with replace_directory(args.out) as staging:
            build(args.docs, staging, experiments=results.experiments)
    total = time.perf_counter() - started
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 1e6 if args.out.exists() else 0
    print(
        f"site: {pages} pages from {len(results.models)} models ({results.data_source}, profile "
        f"{results.profile}); generate {generated:.1f}s, total {total:.1f}s -> {args.out}/ ({size:.1f} MB)"
    )


if __name__ == "__main__":
    run_stage(main)
