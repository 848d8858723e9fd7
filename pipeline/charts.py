"""The website's charts: Altair charts turned into Vega-Lite specs (plain dicts) with their data inline.

Inline data is deliberate: a ``data.url`` renders an empty chart under ``file://``. Every function takes
plain frames and returns ``chart.to_dict()``, so the specs can be snapshot-tested without a browser.
Links from a chart to a model page are relative to the page the chart sits on (``model_href``).
"""

import json
from collections.abc import Callable
from functools import cache

import altair as alt
import numpy as np
import pandas as pd

from pipeline.site_data import ARCHITECTURE_NAMES, EXPERIMENT_NAMES

WIDTH = 340
HEIGHT = 260
TOOLTIP = [
    alt.Tooltip("id:N", title="model"),
    alt.Tooltip("dice:Q", format=".4f", title="Dice"),
    alt.Tooltip("dice_ci_low:Q", format=".4f", title="CI low"),
    alt.Tooltip("dice_ci_high:Q", format=".4f", title="CI high"),
    alt.Tooltip("params_m:Q", format=".2f", title="parameters (M)"),
    alt.Tooltip("gflops:Q", format=".2f", title="GFLOPs"),
    alt.Tooltip("infer_images_per_s:Q", format=".1f", title="inference images/s"),
]
ARCH_SCALE = alt.Scale(domain=list(ARCHITECTURE_NAMES), scheme="category10")
MARKS_OK = "datum.status == 'ok'"


def _spec(chart: alt.TopLevelMixin) -> dict:
    return chart.to_dict()


def pareto_front(frame: pd.DataFrame, cost: str, score: str = "dice") -> pd.Series:
    """True where no other model of the frame is at least as cheap and strictly better, or cheaper and as good."""
    order = frame.sort_values([cost, score], ascending=[True, False])
    best, front = -np.inf, pd.Series(False, index=frame.index)
    for index, value in order[score].items():
        if value > best:
            front[index] = True
            best = value
    return front


def leaderboard_frame(board: pd.DataFrame, model_href: Callable[[str], str]) -> pd.DataFrame:
    """The rows the leaderboard charts draw: finished models, with their page link and Pareto flags."""
    columns = [
        "id",
        "experiment",
        "architecture",
        "encoder",
        "encoder_weights",
        "dice",
        "dice_ci_low",
        "dice_ci_high",
        "params_m",
        "gflops",
        "infer_images_per_s",
        "status",
    ]
    rows = board.loc[board["status"] == "ok", columns].copy()
    rows["url"] = [model_href(model_id) for model_id in rows["id"]]
    rows["pareto_params"] = False
    rows["pareto_speed"] = False
    for _, group in rows.groupby("experiment"):
        rows.loc[group.index, "pareto_params"] = pareto_front(group, "params_m")
        # Faster is better: the front over the negated throughput.
        rows.loc[group.index, "pareto_speed"] = pareto_front(group.assign(cost=-group["infer_images_per_s"]), "cost")
    return rows.reset_index(drop=True)


def leaderboard_chart(board: pd.DataFrame, experiment: str, model_href: Callable[[str], str]) -> dict:
    """Dice vs parameters and vs throughput, linked: experiment selector, architecture and initialisation
    filters, tooltips, a brush on the first plot that the others follow, click-through to each model's page,
    and the Pareto front of each plot."""
    data = leaderboard_frame(board, model_href)
    experiments = list(dict.fromkeys(board["experiment"]))
    present = [a for a in ARCHITECTURE_NAMES if a in set(data["architecture"])]
    select = alt.param(
        name="experiment",
        value=experiment,
        bind=alt.binding_select(
            options=experiments, labels=[EXPERIMENT_NAMES[e] for e in experiments], name="Experiment "
        ),
    )
    initialisation = alt.param(
        name="initialisation",
        value="all",
        bind=alt.binding_select(options=["all", "random", "imagenet"], name="Initialisation "),
    )
    shows = [
        alt.param(name=f"show_{a}", value=True, bind=alt.binding_checkbox(name=ARCHITECTURE_NAMES[a] + " "))
        for a in present
    ]
    brush = alt.selection_interval(name="brush", encodings=["x", "y"])
    shown = " || ".join(f"(datum.architecture == '{a}' && show_{a})" for a in present)
    base = (
        alt.Chart(data)
        .transform_filter("datum.experiment == experiment")
        .transform_filter("initialisation == 'all' || datum.encoder_weights == initialisation")
        .transform_filter(shown or "true")
    )
    colour = alt.condition(
        brush, alt.Color("architecture:N", scale=ARCH_SCALE, title="architecture"), alt.value("lightgray")
    )
    shape = alt.Shape("encoder_weights:N", scale=alt.Scale(domain=["random", "imagenet"]), title="initialisation")
    y = alt.Y("dice:Q", title="Dice (per volume, mean)", scale=alt.Scale(zero=False))

    def scatter(field: str, title: str, pareto: str, with_brush: bool) -> alt.LayerChart:
        x = alt.X(f"{field}:Q", scale=alt.Scale(type="log"), title=title)
        points = base.mark_point(filled=True, size=60, cursor="pointer").encode(
            x=x, y=y, color=colour, shape=shape, tooltip=TOOLTIP, href="url:N"
        )
        if with_brush:
            points = points.add_params(brush)
        front = (
            base.transform_filter(f"datum.{pareto}")
            .mark_line(color="black", strokeDash=[4, 3])
            .encode(x=x, y="dice:Q", order=f"{field}:Q")
        )
        return alt.layer(points, front).properties(width=WIDTH, height=HEIGHT)

    by_params = scatter("params_m", "parameters (millions, log)", "pareto_params", True)
    by_speed = scatter("infer_images_per_s", "inference throughput (images/s, log)", "pareto_speed", False)
    bars = (
        base.transform_filter(brush)
        .mark_bar()
        .encode(
            y=alt.Y("architecture:N", sort=present, title=None),
            x=alt.X("mean(dice):Q", title="mean Dice of the brushed models", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("architecture:N", scale=ARCH_SCALE),
            tooltip=[
                alt.Tooltip("mean(dice):Q", format=".4f", title="mean Dice"),
                alt.Tooltip("count():Q", title="models"),
            ],
        )
        .properties(width=WIDTH * 2 + 40, height=22 * max(1, len(present)))
    )
    chart = alt.vconcat(alt.hconcat(by_params, by_speed), bars).add_params(select, initialisation, *shows)
    return _spec(chart.properties(title="Dice vs size and speed: drag to brush, click a point to open its model"))


# Per-model charts: 600 of them. Altair builds each chart's structure once, on named datasets; a model's
# spec is that structure with its own rows filled in (building every one through Altair took 45 s of the
# 600-model site's generation).
@cache
def _loss_template(points: bool) -> str:
    lines = (
        alt.Chart(alt.NamedData("history"))
        .mark_line(point=points)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("loss:Q", title="Dice loss"),
            color=alt.Color("split:N", title=None),
            tooltip=["epoch:Q", "split:N", alt.Tooltip("loss:Q", format=".4f")],
        )
    )
    rule = alt.Chart(alt.NamedData("kept")).mark_rule(strokeDash=[4, 3], color="gray")
    rule = rule.encode(x="epoch:Q", tooltip=[alt.Tooltip("epoch:Q", title="kept epoch")])
    chart = alt.layer(lines, rule).properties(width=520, height=240, title="Loss per epoch (dashed: kept)")
    return json.dumps(_spec(chart))


def _filled(template: str, **datasets: list[dict]) -> dict:
    spec = json.loads(template)
    spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    return spec


def loss_curves(history: pd.DataFrame, best_epoch: int) -> dict:
    """A model's training and validation loss per epoch, the kept (best validation) epoch marked."""
    rows = [
        {"epoch": int(e), "split": split, "loss": round(float(loss), 6)}
        for column, split in (("train_loss", "train"), ("val_loss", "validation"))
        for e, loss in zip(history["epoch"], history[column], strict=True)
    ]
    return _filled(_loss_template(len(history) <= 30), history=rows, kept=[{"epoch": int(best_epoch)}])


@cache
def _volume_template() -> str:
    chart = (
        alt.Chart(alt.NamedData("volumes"))
        .mark_bar()
        .encode(
            x=alt.X("volume:N", sort=None, title="test volume"),
            y=alt.Y("dice:Q", title="Dice", scale=alt.Scale(domain=[0, 1])),
            tooltip=[
                "volume:N",
                "slices:Q",
                alt.Tooltip("dice:Q", format=".4f"),
                alt.Tooltip("sensitivity:Q", format=".4f"),
                alt.Tooltip("precision:Q", format=".4f"),
            ],
        )
        .properties(width=520, height=180, title="Dice per test volume (native geometry)")
    )
    return json.dumps(_spec(chart))


def volume_bars(volumes: pd.DataFrame) -> dict:
    columns = ["volume", "slices", "dice", "sensitivity", "precision"]
    rows = json.loads(volumes[columns].to_json(orient="records", double_precision=6))
    return _filled(_volume_template(), volumes=rows)


def box_plots(board: pd.DataFrame, by: str, title: str) -> dict:
    """Dice distribution per ``by`` (architecture, encoder_weights), one panel per experiment."""
    rows = board.loc[board["status"] == "ok", ["id", "experiment", by, "dice"]]
    chart = (
        alt.Chart(rows)
        .mark_boxplot(extent="min-max", size=28)
        .encode(
            x=alt.X(f"{by}:N", title=None),
            y=alt.Y("dice:Q", title="Dice", scale=alt.Scale(zero=False)),
            color=alt.Color(f"{by}:N", legend=None),
            column=alt.Column("experiment:N", title=None, sort=list(EXPERIMENT_NAMES)),
        )
        .properties(width=200, height=240, title=title)
        .resolve_scale(y="independent")
    )
    return _spec(chart)


def encoder_heatmap(board: pd.DataFrame, experiment: str, model_href: Callable[[str], str]) -> dict:
    """Architecture x encoder Dice for one experiment, with an initialisation selector; cells link to models."""
    rows = board.loc[
        board["status"] == "ok", ["id", "experiment", "architecture", "encoder", "encoder_weights", "dice"]
    ].copy()
    rows = rows[rows["experiment"] == experiment]
    rows["url"] = [model_href(model_id) for model_id in rows["id"]]
    weights = sorted(set(rows["encoder_weights"]), key=["random", "imagenet"].index) or ["random"]
    init = alt.param(name="init", value=weights[0], bind=alt.binding_select(options=weights, name="Initialisation "))
    base = alt.Chart(rows).transform_filter("datum.encoder_weights == init")
    cells = base.mark_rect(cursor="pointer").encode(
        x=alt.X("encoder:N", title="encoder", sort=None),
        y=alt.Y("architecture:N", title=None, sort=list(ARCHITECTURE_NAMES)),
        color=alt.Color("dice:Q", scale=alt.Scale(scheme="viridis"), title="Dice"),
        tooltip=["id:N", alt.Tooltip("dice:Q", format=".4f")],
        href="url:N",
    )
    text = base.mark_text(fontSize=9).encode(
        x=alt.X("encoder:N", sort=None),
        y=alt.Y("architecture:N", sort=list(ARCHITECTURE_NAMES)),
        text=alt.Text("dice:Q", format=".2f"),
        color=alt.condition("datum.dice > 0.5", alt.value("black"), alt.value("white")),
    )
    chart = alt.layer(cells, text).add_params(init)
    return _spec(chart.properties(title=EXPERIMENT_NAMES[experiment], width=alt.Step(34), height=alt.Step(26)))


def paired_scatter(pairs: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, title: str) -> dict | None:
    """One point per pair of models (e.g. random vs ImageNet), the diagonal y = x drawn; None without pairs."""
    if pairs.empty:
        return None
    points = (
        alt.Chart(pairs)
        .mark_point(filled=True, size=50)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color("architecture:N", scale=ARCH_SCALE),
            tooltip=[c for c in pairs.columns if not c.startswith("url")],
        )
    )
    low, high = float(min(pairs[x].min(), pairs[y].min())), float(max(pairs[x].max(), pairs[y].max()))
    diagonal = alt.Chart(pd.DataFrame({"a": [low, high]})).mark_line(color="gray", strokeDash=[4, 3])
    diagonal = diagonal.encode(x="a:Q", y="a:Q")
    return _spec(alt.layer(diagonal, points).properties(width=WIDTH, height=WIDTH, title=title))


def mean_std_curves(curves: pd.DataFrame) -> dict:
    """Loss per epoch, mean line and +/- std band per architecture; rows experiment, columns split."""
    base = alt.Chart().encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("architecture:N", scale=ARCH_SCALE),
    )
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("low:Q", title="Dice loss"), y2="high:Q")
    line = base.mark_line().encode(
        y="mean:Q",
        tooltip=["architecture:N", "epoch:Q", alt.Tooltip("mean:Q", format=".4f"), alt.Tooltip("std:Q", format=".4f")],
    )
    chart = (
        alt.layer(band, line, data=curves)
        .properties(width=260, height=170)
        .facet(
            row=alt.Row("experiment:N", sort=list(EXPERIMENT_NAMES), title=None),
            column=alt.Column("split:N", title=None),
        )
    )
    return _spec(chart.properties(title="Loss per epoch, mean and +/- 1 std over encoders and initialisations"))


def intensity_histograms(histograms: dict) -> dict:
    """The paper's Fig. 2: normalised input intensities, all pixels vs inside the target, log frequency."""
    bins = histograms["bins"]
    rows = []
    for experiment, series in histograms["experiments"].items():
        for which, label in (("image", "all pixels"), ("target", "inside the target")):
            for low, high, value in zip(bins[:-1], bins[1:], series[which], strict=True):
                if value > 0:
                    rows.append({"experiment": experiment, "pixels": label, "low": low, "high": high, "density": value})
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar(opacity=0.55, binSpacing=0)
        .encode(
            x=alt.X("low:Q", bin="binned", title="normalised intensity (HU + 500) / 500"),
            x2="high:Q",
            y=alt.Y("density:Q", scale=alt.Scale(type="log"), title="density (log)", stack=None),
            color=alt.Color("pixels:N", title=None),
            tooltip=["pixels:N", alt.Tooltip("low:Q", format=".2f"), alt.Tooltip("density:Q", format=".4f")],
        )
        .properties(width=260, height=180)
        .facet(column=alt.Column("experiment:N", sort=list(EXPERIMENT_NAMES), title=None))
    )
    return _spec(chart.properties(title="Test-set intensities after normalisation"))


def dice_vs_params(board: pd.DataFrame, model_href: Callable[[str], str]) -> dict:
    """The paper's Fig. 4: Dice against parameter count, one panel per experiment, with a linear fit."""
    rows = leaderboard_frame(board, model_href)
    base = alt.Chart().encode(x=alt.X("params_m:Q", scale=alt.Scale(type="log"), title="parameters (M, log)"))
    points = base.mark_point(filled=True, cursor="pointer").encode(
        y=alt.Y("dice:Q", title="Dice", scale=alt.Scale(zero=False)),
        color=alt.Color("architecture:N", scale=ARCH_SCALE),
        tooltip=TOOLTIP,
        href="url:N",
    )
    fit = base.transform_regression("params_m", "dice", method="log").mark_line(color="black", strokeDash=[4, 3])
    fit = fit.encode(y="dice:Q")
    chart = (
        alt.layer(points, fit, data=rows)
        .properties(width=250, height=220)
        .facet(column=alt.Column("experiment:N", sort=list(EXPERIMENT_NAMES), title=None))
        .resolve_scale(y="independent")
    )
    return _spec(chart.properties(title="Dice vs number of parameters (dashed: least-squares fit on log params)"))
