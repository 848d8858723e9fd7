"""The comparison pages (rankings, architectures, encoders, initialisation, lesions, training, the paper's
figures) and the compare view of any models side by side."""

from collections.abc import Callable

import pandas as pd
from scipy import stats

from pipeline.results.findings import INITIALISATION_EFFECT, LESION_EFFECT
from pipeline.site import charts
from pipeline.site.context import chart_note, page_banner, records
from pipeline.site.data import Results, intensity
from pipeline.site.model_page import VIEWER_COLOURS


def curves_frame(results: Results) -> pd.DataFrame:
    """Every evaluated model's loss per epoch, long: id, experiment, architecture, split, epoch, loss."""
    frames = []
    for model_id, model in results.models.items():
        if model.history.empty:
            continue
        frame = model.history.melt(
            id_vars="epoch", value_vars=["train_loss", "val_loss"], var_name="split", value_name="loss"
        )
        frame["split"] = frame["split"].map({"train_loss": "train", "val_loss": "validation"})
        metrics = model.metrics
        frames.append(frame.assign(id=model_id, architecture=metrics["architecture"], experiment=metrics["experiment"]))
    if not frames:
        return pd.DataFrame(columns=["id", "experiment", "architecture", "split", "epoch", "loss"])
    return pd.concat(frames).round(6)


def compare_contexts(results: Results, model_href: Callable[[str], str]) -> dict[str, dict]:
    """One context per comparison page (template compare/<name>.md.j2)."""
    # The grid's own comparisons: submissions have no architecture x encoder x initialisation to compare by.
    board = results.grid
    summary, banner, note = results.summary, page_banner(results), chart_note(results)
    init_pairs, lesion_pairs = (pd.DataFrame(summary["pairs"][name]) for name in ("initialisation", "lesions"))
    filters = sorted(p.stem for p in (results.figures / "filters").glob("*.png"))
    effects = summary["effects"]
    arch_effects = [e for e in effects if e["effect"] not in (INITIALISATION_EFFECT, LESION_EFFECT)]
    init_effects = [e for e in effects if e["effect"] == INITIALISATION_EFFECT]
    lesion_effects = [e for e in effects if e["effect"] == LESION_EFFECT]
    common = {"banner": banner, "experiments": results.experiments, "summary": summary}
    return {
        "architectures": {
            **common,
            "strip": charts.strip_plot(board, "architecture", "Dice per architecture, every model", note, model_href),
            "forest": charts.forest_plot(arch_effects, note, "One architecture against another, same encoder and init"),
            "ours": summary["dice"]["by_architecture"],
        },
        "encoders": {
            **common,
            "heatmaps": {e: charts.encoder_heatmap(board, e, model_href, note) for e in results.experiments},
            "ours": summary["dice"]["by_encoder"],
        },
        "initialisation": {
            **common,
            "strip": charts.strip_plot(board, "encoder_weights", "Dice per initialisation, every model", note,
                                       model_href),
            "forest": charts.forest_plot(init_effects, note, "ImageNet minus random, same model otherwise"),
            "pairs": len(init_pairs),
            "scatter": charts.paired_scatter(init_pairs, "random", "imagenet", "Dice, random init",
                                             "Dice, ImageNet init", "Same model, two initialisations", note),
            "filters": filters,
        },
        "lesions": {
            **common,
            "pairs": len(lesion_pairs),
            "forest": charts.forest_plot(lesion_effects, note, "Lesion B minus lesion A, same model otherwise"),
            "scatter": charts.paired_scatter(lesion_pairs, "lesion_a", "lesion_b", "Dice, lesion A", "Dice, lesion B",
                                             "Same model, without and with the lung mask", note),
        },
        "training": {**common, "curves": charts.training_curves(curves_frame(results), note)},
        "rankings": {
            **common,
            "blobs": {e: charts.blob_plot(results.rankings, summary["rankings"]["dice"][e]["blobs"], e, "dice", note,
                                          model_href) for e in summary["rankings"]["dice"]},
            "significance": {e: charts.significance_map(summary["rankings"]["dice"][e]["significance"], e, note)
                             for e in summary["rankings"]["dice"]},
            "recipes": records(results.recipes),
        },
        "figures": {
            **common,
            "params": charts.dice_vs_params(board, model_href, note),
            "correlations": summary["size_correlation"],
            "histograms": charts.intensity_histograms(intensity(results), note),
            "masks": summary["best_and_worst"],
            "slices": results.slices,
        },
    }  # fmt: skip


def t_quantiles(confidence: float, most: int = 100) -> dict[str, float]:
    """The two-sided Student t quantile at ``confidence`` for 1 to ``most`` degrees of freedom (scipy): what the
    compare view's paired intervals use, so that the browser needs no t distribution of its own."""

    return {str(df): round(float(stats.t.ppf(0.5 + confidence / 2, df)), 6) for df in range(1, most + 1)}


def compare_page_context(results: Results) -> dict:
    return {
        "banner": page_banner(results), "experiments": results.experiments,
        "loss_template": charts.loss_template(chart_note(results)),
        "bootstrap": results.summary["bootstrap"], "viewer_colours": VIEWER_COLOURS,
        "t_quantiles": t_quantiles(results.summary["bootstrap"]["confidence"]),
    }  # fmt: skip
