"""The website's charts: Altair charts compiled to Vega specs (plain dicts) with their data inline.

Altair writes Vega-Lite; ``vega()`` compiles it to Vega when the site is built (vl-convert, offline), so the
pages load only the Vega runtime, not the Vega-Lite compiler. Data are inline (a ``data.url`` renders an empty
chart under ``file://``). Every function takes plain frames and returns a spec, so specs can be snapshot-tested
without a browser.

What the charts promise: a control offers only values that occur in the data and changes only what it names
(no experiment selector on an experiment's page); bands and intervals never leave the metric's range (small
groups are drawn point by point); every title says when the data are synthetic; links to model pages are
relative to the page the chart sits on (``model_href``).
"""

import json
from collections.abc import Callable
from functools import cache

import altair as alt
import pandas as pd

from pipeline.site.data import ARCHITECTURE_NAMES, EXPERIMENT_NAMES

VEGA_LITE_VERSION = "6.4"
WIDTH = 330
HEIGHT = 250
# One colour per architecture on every chart; a chart's legend lists only the architectures it draws. The
# paper's four keep theirs; any other architecture smp accepts takes the next colour of the palette.
ARCH_COLOURS = {"unet": "#1f77b4", "linknet": "#ff7f0e", "fpn": "#2ca02c", "pspnet": "#d62728"}
MORE_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# Submissions (pipeline.submit) are drawn in one colour and shape of their own, whatever their architecture.
SUBMISSION = "submission"
SUBMISSION_COLOUR = "#000000"


def architectures_in(present) -> list[str]:
    """The architectures of ``present`` in the order every chart uses: the paper's first, then any other in
    name order, submissions last. Never drops one (a grid with deeplabv3 keeps its points)."""
    present = {str(name) for name in present if isinstance(name, str)}
    known = [name for name in ARCHITECTURE_NAMES if name in present]
    others = sorted(present - set(ARCHITECTURE_NAMES) - {SUBMISSION})
    return known + others + ([SUBMISSION] if SUBMISSION in present else [])


def arch_colour(name: str, order: list[str]) -> str:
    if name == SUBMISSION:
        return SUBMISSION_COLOUR
    if name in ARCH_COLOURS:
        return ARCH_COLOURS[name]
    others = [a for a in order if a not in ARCH_COLOURS and a != SUBMISSION]
    return MORE_COLOURS[others.index(name) % len(MORE_COLOURS)]


def arch_scale(present) -> alt.Scale:
    names = architectures_in(present)
    return alt.Scale(domain=names, range=[arch_colour(name, names) for name in names])


def vega(spec: dict) -> dict:
    """A Vega-Lite spec compiled to Vega (the pages ship the Vega runtime only)."""
    import vl_convert

    return vl_convert.vegalite_to_vega(spec, vl_version=VEGA_LITE_VERSION)


def _title(text: str, note: str) -> alt.TitleParams:
    """A chart title; ``note`` (e.g. "synthetic data, profile demo") goes under it, so exports keep it."""
    return alt.TitleParams(text, subtitle=note or alt.Undefined, anchor="start")


def _compiled(chart) -> dict:
    """The chart as Vega, described by its title for screen readers (Vega's SVG renderer gives the chart
    ``role="graphics-document"`` and this as its accessible name)."""
    spec = chart.to_dict()
    title = spec.get("title")
    if isinstance(title, dict) and "description" not in spec:
        subtitle = f" ({title['subtitle']})" if title.get("subtitle") else ""
        spec["description"] = f"Chart: {title.get('text', '')}{subtitle}"
    return vega(spec)


def link(model_href: Callable[[str], str]) -> str:
    """A Vega expression for a model's page from its id, so that no row carries its URL (600 of them weigh)."""
    before, after = model_href("\0").split("\0")
    return f"{json.dumps(before)} + datum.id + {json.dumps(after)}"


def leaderboard_frame(board: pd.DataFrame) -> pd.DataFrame:
    """The rows the leaderboard charts draw: models with status ok, only the fields they use, rounded."""
    columns = ["id", "experiment", "architecture", "encoder", "encoder_weights", "dice", "dice_ci_low",
               "dice_ci_high", "params_m", "infer_images_per_s"]  # fmt: skip
    ok = board[board["status"] == "ok"]
    rows = ok[columns].round(4).copy()
    external = (ok["source"] == "external").to_numpy()
    rows.loc[external, "architecture"] = SUBMISSION
    rows.loc[external, "encoder_weights"] = SUBMISSION
    # What a point on a Pareto front is labelled with: the model's id without its experiment (the chart's own),
    # never the encoder alone (two architectures of one encoder would read the same); a submission its name.
    rows["label"] = [row.id if row.architecture == SUBMISSION else row.id.removeprefix(f"{row.experiment}-")
                     for row in rows.itertuples()]  # fmt: skip
    rows["rank_interval"] = [f"{int(a)}-{int(b)}" for a, b in zip(ok["rank_low"], ok["rank_high"], strict=True)]
    return rows.reset_index(drop=True)


def _tooltip(speed_title: str) -> list:
    return [
        alt.Tooltip("id:N", title="model"),
        alt.Tooltip("dice:Q", format=".4f", title="Dice"),
        alt.Tooltip("dice_ci_low:Q", format=".4f", title="Dice 95% CI low"),
        alt.Tooltip("dice_ci_high:Q", format=".4f", title="Dice 95% CI high"),
        alt.Tooltip("rank_interval:N", title="rank, 95% interval"),
        alt.Tooltip("params_m:Q", format=".2f", title="parameters (M)"),
        alt.Tooltip("infer_images_per_s:Q", format=".1f", title=speed_title),
    ]


def leaderboard_chart(board: pd.DataFrame, experiment: str, model_href: Callable[[str], str], device: str,
                      note: str) -> dict:  # fmt: skip
    """One experiment's Dice against size and against speed, with the Pareto front of each (dashed, named in
    the legend). Architecture and initialisation filters list only what this experiment has; no brushing."""
    data = leaderboard_frame(board[board["experiment"] == experiment])
    present = architectures_in(data["architecture"])
    inits = [w for w in ("random", "imagenet", SUBMISSION) if w in set(data["encoder_weights"])]
    params, filters = [], []
    if len(present) > 1:
        for name in present:
            label = "Submissions" if name == SUBMISSION else ARCHITECTURE_NAMES.get(name, name)
            params.append(alt.param(name=f"show_{name}", value=True, bind=alt.binding_checkbox(name=label + " ")))
        filters.append(" || ".join(f"(datum.architecture == '{a}' && show_{a})" for a in present))
    grid_inits = [w for w in inits if w != SUBMISSION]
    if len(grid_inits) > 1:
        choice = alt.binding_select(options=["all", *grid_inits], name="Initialisation ")
        params.append(alt.param(name="initialisation", value="all", bind=choice))
        filters.append(f"initialisation == 'all' || datum.encoder_weights == initialisation || "
                       f"datum.encoder_weights == '{SUBMISSION}'")  # fmt: skip
    base = alt.Chart(data).transform_calculate(url=link(model_href))
    for expression in filters:
        base = base.transform_filter(expression)
    colour = alt.Color("architecture:N", scale=arch_scale(present), title="architecture")
    shape = alt.Shape("encoder_weights:N", scale=alt.Scale(domain=inits), title="initialisation")
    y = alt.Y("dice:Q", title="Dice (per volume, mean; higher is better)", scale=alt.Scale(zero=False))
    speed_title = f"inference images/s ({device})"

    def scatter(field: str, title: str) -> alt.LayerChart:
        # Log scales: labels that would touch are dropped (greedy), and short numbers ("1k") leave room.
        axis = alt.Axis(labelOverlap="greedy", labelSeparation=6, format="~s")
        x = alt.X(f"{field}:Q", scale=alt.Scale(type="log"), title=title, axis=axis)
        points = base.mark_point(filled=True, size=70, cursor="pointer").encode(
            x=x, y=y, color=colour, shape=shape, tooltip=_tooltip(speed_title), href="url:N"
        )
        # The front of what is shown: computed in the chart, after the filters, so it follows them. A model is
        # on it when no cheaper model is better: its Dice is the best so far in order of cost (a frame of
        # [null, -1], "better than every earlier one", fails in vega 6.4's window transform).
        cost = f"datum.{field}" if field != "infer_images_per_s" else "-datum.infer_images_per_s"
        on_front = (
            base.transform_filter(f"isValid(datum.{field})")
            .transform_calculate(cost=cost)
            .transform_window(best_so_far="max(dice)", frame=[None, 0],
                              sort=[alt.SortField("cost"), alt.SortField("dice", order="descending")])
            .transform_filter("datum.dice >= datum.best_so_far")
            .transform_calculate(front="'Pareto front'")
        )  # fmt: skip
        front = on_front.mark_line(color="black", strokeDash=[4, 3]).encode(
            x=x, y="dice:Q", order="cost:Q",
            strokeDash=alt.StrokeDash("front:N", title=None, scale=alt.Scale(range=[[4, 3]])),
        )  # fmt: skip
        labels = on_front.mark_text(align="left", dx=6, dy=-7, fontSize=9, color="#333").encode(
            x=x, y="dice:Q", text="label:N"
        )
        return alt.layer(points, front, labels).properties(width=WIDTH, height=HEIGHT)

    by_params = scatter("params_m", "parameters (millions, log scale)")
    charts = [by_params]
    if data["infer_images_per_s"].notna().any():
        charts.append(scatter("infer_images_per_s", f"{speed_title}, log scale"))
    chart = alt.hconcat(*charts).add_params(*params) if params else alt.hconcat(*charts)
    title = f"{EXPERIMENT_NAMES[experiment]}: Dice against size and speed"
    hint = "click a point to open its model; labelled: the Pareto front"
    return _compiled(chart.properties(title=_title(title, f"{note}; {hint}" if note else hint)))


def blob_plot(rankings: pd.DataFrame, blobs: list[dict], experiment: str, metric: str, note: str,
              model_href: Callable[[str], str]) -> dict:  # fmt: skip
    """challengeR's blob plot: for the top models (by rank on all volumes), a circle per rank they took in the
    bootstrap draws, its area the share of draws; a cross at the median rank, a line over the 95% interval."""
    order = [blob["id"] for blob in blobs]
    rows = [
        {"id": blob["id"], "rank": int(rank), "share": share} for blob in blobs for rank, share in blob["ranks"].items()
    ]
    summary = pd.DataFrame([{key: blob[key] for key in ("id", "rank", "rank_median", "rank_low", "rank_high")}
                            for blob in blobs])  # fmt: skip
    x = alt.X("id:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=220))
    # Padding (pixels) keeps the largest circles, at the first and last ranks, inside the plot.
    y = alt.Y("rank:Q", title="rank in the bootstrap draws (1 = best)",
              scale=alt.Scale(reverse=True, zero=False, padding=14),
              axis=alt.Axis(tickMinStep=1, format="d"))  # fmt: skip
    circles = alt.Chart(pd.DataFrame(rows)).transform_calculate(url=link(model_href))
    circles = circles.mark_circle(color="#4c78a8", opacity=0.7, cursor="pointer").encode(
        x=x, y=y, size=alt.Size("share:Q", title="share of draws", scale=alt.Scale(range=[10, 500], domain=[0, 1])),
        href="url:N", tooltip=["id:N", "rank:Q", alt.Tooltip("share:Q", format=".1%", title="share of draws")],
    )  # fmt: skip
    summary_chart = alt.Chart(summary).transform_calculate(url=link(model_href))
    interval = summary_chart.mark_rule(color="black", cursor="pointer").encode(
        x=x, y="rank_low:Q", y2="rank_high:Q", href="url:N"
    )
    median = summary_chart.mark_point(shape="cross", color="black", size=80, filled=True, cursor="pointer").encode(
        x=x, y="rank_median:Q", href="url:N",
        tooltip=["id:N", alt.Tooltip("rank_median:Q", title="median rank"),
                 alt.Tooltip("rank_low:Q", title="rank set from"), alt.Tooltip("rank_high:Q", title="to")],
    )  # fmt: skip
    shown = {"dice": "Dice", "nsd": "NSD", "hd95": "HD95"}.get(metric, metric)
    title = f"{EXPERIMENT_NAMES[experiment]}: rank uncertainty of the top {len(order)} on {shown}"
    chart = alt.layer(circles, interval, median).properties(width=max(300, 34 * len(order)), height=230)
    return _compiled(chart.properties(title=_title(title, note)))


def significance_map(significance: dict, experiment: str, note: str) -> dict | None:
    """challengeR's significance map of the top models: a cell per ordered pair, filled where the row model
    beats the column model at the adjusted level; None with fewer than two models."""
    ids, alpha = significance["ids"], significance["alpha"]
    if len(ids) < 2:
        return None
    rows = [{"row": ids[i], "column": ids[j], "p": p, "beats": "yes" if p < alpha else "no"}
            for i, line in enumerate(significance["p"]) for j, p in enumerate(line) if p is not None]  # fmt: skip
    axis = {"sort": ids, "axis": alt.Axis(labelLimit=200)}
    chart = alt.Chart(pd.DataFrame(rows)).mark_rect(stroke="white").encode(
        x=alt.X("column:N", title="...beats this model", **axis),
        y=alt.Y("row:N", title="this model...", **axis),
        color=alt.Color("beats:N", title=f"adjusted p < {alpha}",
                        scale=alt.Scale(domain=["yes", "no"], range=["#1f77b4", "#e8e8e8"])),
        tooltip=["row:N", "column:N", alt.Tooltip("p:Q", format=".4f", title="adjusted p (every pair at once)")],
    )  # fmt: skip
    title = (f"{EXPERIMENT_NAMES[experiment]}: which model is separated from which as better (max-T and Holm "
             f"over all {significance['comparisons']} pairs)")  # fmt: skip
    return _compiled(chart.properties(width=alt.Step(22), height=alt.Step(22), title=_title(title, note)))


def forest_plot(effects: list[dict], note: str, title: str) -> dict | None:
    """Paired effects as mean differences over pairs of models, one row each, with their 95% t interval where
    there are enough pairs for one (pipeline.results.findings.MIN_PAIRS) and the point alone otherwise; each
    label says how many pairs and wins. The axis spans every point and interval and 0 ("no difference")."""
    rows = [e for e in effects if e["mean"] is not None]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["label"] = [
        f"{e['effect']} ({EXPERIMENT_NAMES.get(e['experiment'], e['experiment'])}): {e['wins']} of "
        f"{_plural(e['n'], 'pair')} better" + ("" if e["ci_low"] is not None else ", too few for an interval")
        for e in rows
    ]  # fmt: skip
    values = [0.0, *frame["mean"], *frame["ci_low"].dropna(), *frame["ci_high"].dropna()]
    pad = 0.05 * (max(values) - min(values) or 1.0)
    x_scale = alt.Scale(domain=[min(values) - pad, max(values) + pad], zero=False, nice=False)
    y = alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=360))
    x_title = "Dice difference, mean over pairs (95% t interval from 5 pairs)"
    tooltip = ["label:N", alt.Tooltip("mean:Q", format="+.4f"), alt.Tooltip("ci_low:Q", format="+.4f"),
               alt.Tooltip("ci_high:Q", format="+.4f"), alt.Tooltip("sign_p:Q", format=".3f",
                                                                     title="sign test p (exact)")]  # fmt: skip
    zero = (
        alt.Chart(pd.DataFrame({"x": [0.0]}))
        .mark_rule(color="gray", strokeDash=[4, 3])
        .encode(x=alt.X("x:Q", scale=x_scale))
    )
    with_interval = frame.dropna(subset=["ci_low", "ci_high"])
    bars = (
        alt.Chart(with_interval)
        .mark_rule(strokeWidth=2)
        .encode(x=alt.X("ci_low:Q", title=x_title, scale=x_scale), x2="ci_high:Q", y=y)
    )
    points = alt.Chart(frame).mark_point(filled=True, size=70, color="black").encode(
        x=alt.X("mean:Q", scale=x_scale, title=x_title), y=y, tooltip=tooltip)  # fmt: skip
    layers = [zero, bars, points] if len(with_interval) else [zero, points]
    chart = alt.layer(*layers).properties(width=420, height=alt.Step(24))
    return _compiled(chart.properties(title=_title(title, note)))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# Per-model charts: 600 of them. Each chart type is built through Altair and compiled once, on named
# datasets; a model's spec is that structure with its own rows filled in (compiling each one is slow).
@cache
def _loss_template(points: bool, note: str, kept: bool) -> str:
    """The loss chart of one model (``kept``: with its kept epoch marked) or of the models the compare view
    chooses (no epoch mark: an empty layer would make Vega warn about an infinite extent)."""
    lines = (
        alt.Chart(alt.NamedData("history"))
        .mark_line(point=points)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("loss:Q", title="Dice loss (lower is better)", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("series:N", title=None, legend=alt.Legend(labelLimit=360)),
            # Validation dashed: the two curves of a model, and the models of the compare view, are told apart
            # without colour.
            strokeDash=alt.StrokeDash(
                "split:N", title=None, scale=alt.Scale(domain=["train", "validation"], range=[[1, 0], [5, 3]])
            ),
            tooltip=["epoch:Q", "series:N", alt.Tooltip("loss:Q", format=".4f")],
        )
    )
    datasets = {"history": [{"epoch": 1, "series": "train", "split": "train", "loss": 0.5}]}
    if kept:
        rule = alt.Chart(alt.NamedData("kept")).mark_rule(strokeDash=[4, 3], color="gray")
        rule = rule.encode(x="epoch:Q", tooltip=[alt.Tooltip("epoch:Q", title="kept epoch")])
        chart = alt.layer(lines, rule).properties(title=_title("Loss per epoch (dashed: the epoch kept)", note))
        datasets["kept"] = [{"epoch": 1}]
    else:
        chart = lines.properties(title=_title("Loss per epoch of the chosen models (lower is better)", note))
    spec = chart.properties(width=520, height=220).to_dict()
    spec["datasets"] = datasets
    return json.dumps(vega(spec))


def _filled(template: str, **datasets: list[dict]) -> dict:
    spec = json.loads(template)
    for entry in spec["data"]:
        if entry.get("name") in datasets:
            entry["values"] = datasets[entry["name"]]
    return spec


def history_rows(history: pd.DataFrame, label: str = "") -> list[dict]:
    """A history as long rows for the loss charts; ``label`` prefixes the series (the model, on compare)."""
    return [
        {"epoch": int(epoch), "series": f"{label}{split}", "split": split, "loss": round(float(loss), 6)}
        for column, split in (("train_loss", "train"), ("val_loss", "validation"))
        for epoch, loss in zip(history["epoch"], history[column], strict=True)
    ]


def loss_curves(history: pd.DataFrame, best_epoch: int, note: str) -> dict:
    """A model's training and validation loss per epoch, the kept (best validation) epoch marked."""
    return _filled(_loss_template(len(history) <= 30, note, True), history=history_rows(history),
                   kept=[{"epoch": int(best_epoch)}])  # fmt: skip


def loss_template(note: str) -> dict:
    """The empty loss chart the compare view fills with the chosen models' curves."""
    return _filled(_loss_template(False, note, False), history=[])


@cache
def _volume_template(note: str) -> str:
    chart = (
        alt.Chart(alt.NamedData("volumes"))
        .mark_bar()
        .encode(
            x=alt.X("volume:N", sort=None, title="test volume"),
            y=alt.Y("dice:Q", title="Dice (higher is better)", scale=alt.Scale(domain=[0, 1])),
            tooltip=[
                "volume:N",
                "slices:Q",
                alt.Tooltip("dice:Q", format=".4f"),
                alt.Tooltip("nsd:Q", format=".4f"),
                alt.Tooltip("hd95:Q", format=".2f", title="HD95 (mm)"),
            ],
        )
        .properties(width=520, height=170, title=_title("Dice per test volume (native geometry)", note))
    )
    spec = chart.to_dict()
    spec["datasets"] = {"volumes": [{"volume": "1", "slices": 1, "dice": 0.5, "nsd": 0.5, "hd95": 1.0}]}
    return json.dumps(vega(spec))


def volume_bars(volumes: pd.DataFrame, note: str) -> dict:
    rows = json.loads(
        volumes[["volume", "slices", "dice", "nsd", "hd95"]].to_json(orient="records", double_precision=6)
    )
    return _filled(_volume_template(note), volumes=rows)


def strip_plot(board: pd.DataFrame, by: str, title: str, note: str, model_href: Callable[[str], str]) -> dict:
    """Dice of every model with status ok, one point each, grouped by ``by`` (architecture, initialisation),
    one panel per experiment, with the group's median as a tick: honest for small groups, where a box of two
    points would draw quartiles that do not exist."""
    rows = board.loc[board["status"] == "ok", ["id", "experiment", by, "dice"]].round(4)
    experiments = [e for e in EXPERIMENT_NAMES if e in set(rows["experiment"])]
    base = alt.Chart().encode(x=alt.X(f"{by}:N", title=None))
    points = base.transform_calculate(url=link(model_href)).mark_circle(size=55, opacity=0.75, cursor="pointer").encode(
        y=alt.Y("dice:Q", title="Dice (higher is better)", scale=alt.Scale(zero=False)),
        color=alt.Color(f"{by}:N", legend=None), href="url:N", tooltip=["id:N", alt.Tooltip("dice:Q", format=".4f")],
    )  # fmt: skip
    median = base.mark_tick(color="black", thickness=2, size=26).encode(y="median(dice):Q")
    chart = (
        alt.layer(points, median, data=rows)
        .properties(width=170, height=220)
        .facet(column=_experiment_header(experiments))
        .resolve_scale(y="independent")
    )
    return _compiled(chart.properties(title=_title(title, note)))


def _experiment_label_expression() -> str:
    cases = " : ".join(f"datum.value == '{key}' ? '{name}'" for key, name in EXPERIMENT_NAMES.items())
    return f"{cases} : datum.value"


def _experiment_header(experiments: list[str], channel=alt.Column):
    """The facet channel of one panel per experiment, in the study's order, labelled with its full name."""
    header = alt.Header(labelExpr=_experiment_label_expression())
    return channel("experiment:N", sort=experiments, title=None, header=header)


def encoder_heatmap(board: pd.DataFrame, experiment: str, model_href: Callable[[str], str], note: str) -> dict:
    """Architecture x encoder Dice for one experiment; an initialisation selector only when both occur; the
    whole cell (its number included) opens the model; the number is dark on light cells and light on dark."""
    rows = board.loc[
        board["status"] == "ok", ["id", "experiment", "architecture", "encoder", "encoder_weights", "dice"]
    ]
    rows = rows[rows["experiment"] == experiment].round(4)
    weights = [w for w in ("random", "imagenet") if w in set(rows["encoder_weights"])]
    base = alt.Chart(rows).transform_calculate(url=link(model_href))
    if len(weights) > 1:
        base = base.transform_filter("datum.encoder_weights == init")
    x = alt.X("encoder:N", title="encoder", sort=None)
    y = alt.Y("architecture:N", title=None, sort=architectures_in(rows["architecture"]))
    tooltip = ["id:N", alt.Tooltip("dice:Q", format=".4f", title="Dice")]
    cells = base.mark_rect(cursor="pointer").encode(
        x=x, y=y, color=alt.Color("dice:Q", scale=alt.Scale(scheme="viridis"), title="Dice"), tooltip=tooltip,
        href="url:N",
    )  # fmt: skip
    # viridis is light (yellow) at the top of its range: dark text there, white text on its dark end.
    midpoint = float(rows["dice"].min() + 0.55 * (rows["dice"].max() - rows["dice"].min())) if len(rows) else 0.5
    text = base.mark_text(fontSize=10, cursor="pointer").encode(
        x=x, y=y, text=alt.Text("dice:Q", format=".2f"), href="url:N", tooltip=tooltip,
        color=alt.condition(f"datum.dice >= {midpoint}", alt.value("#111111"), alt.value("#ffffff")),
    )  # fmt: skip
    chart = alt.layer(cells, text)
    if len(weights) > 1:
        chart = chart.add_params(
            alt.param(name="init", value=weights[0], bind=alt.binding_select(options=weights, name="Initialisation "))
        )
    title = f"{EXPERIMENT_NAMES[experiment]}: Dice per architecture and encoder"
    return _compiled(chart.properties(title=_title(title, note), width=alt.Step(40), height=alt.Step(30)))


def paired_scatter(
    pairs: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, title: str, note: str
) -> dict | None:
    """One point per pair of models (e.g. random vs ImageNet), the diagonal y = x drawn; None without pairs."""
    if pairs.empty:
        return None
    points = (
        alt.Chart(pairs)
        .mark_point(filled=True, size=55)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color("architecture:N", scale=arch_scale(pairs["architecture"])),
            tooltip=[c for c in pairs.columns if not c.startswith("url")],
        )
    )
    low, high = float(min(pairs[x].min(), pairs[y].min())), float(max(pairs[x].max(), pairs[y].max()))
    diagonal = alt.Chart(pd.DataFrame({"a": [low, high]})).mark_line(color="gray", strokeDash=[4, 3])
    diagonal = diagonal.encode(x="a:Q", y="a:Q")
    return _compiled(alt.layer(diagonal, points).properties(width=WIDTH, height=WIDTH, title=_title(title, note)))


INDIVIDUAL_RUNS = 12  # up to this many runs per architecture and experiment, each is drawn; beyond, their range


def _records(frame: pd.DataFrame) -> alt.Data:
    """Rows inline as plain values (Altair's 5000-row guard is for notebooks; the size is ours to control)."""
    return alt.Data(values=json.loads(frame.to_json(orient="records", double_precision=6)))


def training_curves(curves: pd.DataFrame, note: str) -> dict:
    """Loss per epoch, coloured by architecture; rows experiment, columns split. With few runs per group each
    run is a thin line; with many, the median line inside the band from the lowest to the highest run (never a
    mean +/- std band, which leaves the loss's range [0, 1] when there are few runs)."""
    experiments = [e for e in EXPERIMENT_NAMES if e in set(curves["experiment"])]
    groups = curves.groupby(["experiment", "architecture", "split", "epoch"])["loss"]
    x = alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d"))
    y_scale = alt.Scale(domain=[0, 1])
    colour = alt.Color("architecture:N", scale=arch_scale(curves["architecture"]))
    if groups.size().max() <= INDIVIDUAL_RUNS:
        layers = alt.Chart().mark_line(strokeWidth=1, opacity=0.6).encode(
            x=x, y=alt.Y("loss:Q", title="Dice loss", scale=y_scale), color=colour, detail="id:N",
            tooltip=["id:N", "epoch:Q", alt.Tooltip("loss:Q", format=".4f")],
        )  # fmt: skip
        data, title = curves, "Loss per epoch, every model (lower is better)"
    else:
        data = groups.agg(low="min", median="median", high="max", runs="count").reset_index().round(6)
        band = (
            alt.Chart()
            .mark_area(opacity=0.2)
            .encode(x=x, y=alt.Y("low:Q", title="Dice loss", scale=y_scale), y2="high:Q", color=colour)
        )
        line = alt.Chart().mark_line(strokeWidth=1.5).encode(
            x=x, y="median:Q", color=colour,
            tooltip=["architecture:N", "epoch:Q", alt.Tooltip("median:Q", format=".4f"), "runs:Q"],
        )  # fmt: skip
        layers = alt.layer(band, line)
        title = "Loss per epoch: median and the range from the lowest to the highest run (lower is better)"
    chart = layers.properties(width=250, height=160).facet(
        row=_experiment_header(experiments, alt.Row),
        column=alt.Column("split:N", title=None),
        data=_records(data),
    )
    return _compiled(chart.properties(title=_title(title, note)))


def intensity_histograms(histograms: dict, note: str) -> dict:
    """The paper's Fig. 2: normalised input intensities, all pixels vs inside the target, log frequency."""
    bins = histograms["bins"]
    offset, scale = (histograms["normalisation"][name] for name in ("hu_offset", "hu_scale"))
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
            x=alt.X("low:Q", bin="binned", title=f"normalised intensity (HU + {offset:g}) / {scale:g}"),
            x2="high:Q",
            y=alt.Y("density:Q", scale=alt.Scale(type="log"), title="density (log)", stack=None),
            color=alt.Color("pixels:N", title=None),
            tooltip=["pixels:N", alt.Tooltip("low:Q", format=".2f"), alt.Tooltip("density:Q", format=".4f")],
        )
        .properties(width=240, height=170)
        .facet(column=_experiment_header(list(EXPERIMENT_NAMES)))
    )
    return _compiled(chart.properties(title=_title("Test-set intensities after normalisation", note)))


def dice_vs_params(board: pd.DataFrame, model_href: Callable[[str], str], note: str) -> dict:
    """The paper's Fig. 4: Dice against parameter count, one panel per experiment, with a linear fit."""
    rows = leaderboard_frame(board)
    experiments = [e for e in EXPERIMENT_NAMES if e in set(rows["experiment"])]
    base = alt.Chart().encode(x=alt.X("params_m:Q", scale=alt.Scale(type="log"), title="parameters (M, log)"))
    points = (
        base.transform_calculate(url=link(model_href))
        .mark_point(filled=True, cursor="pointer")
        .encode(
            y=alt.Y("dice:Q", title="Dice (higher is better)", scale=alt.Scale(zero=False)),
            color=alt.Color("architecture:N", scale=arch_scale(rows["architecture"])),
            tooltip=["id:N", alt.Tooltip("dice:Q", format=".4f"), alt.Tooltip("params_m:Q", format=".2f")],
            href="url:N",
        )
    )
    fit = base.transform_regression("params_m", "dice", method="log").mark_line(color="black", strokeDash=[4, 3])
    fit = fit.encode(y="dice:Q")
    chart = (
        alt.layer(points, fit, data=rows)
        .properties(width=240, height=210)
        .facet(column=_experiment_header(experiments))
        .resolve_scale(y="independent")
    )
    title = "Dice vs number of parameters (dashed: least-squares fit on log parameters)"
    return _compiled(chart.properties(title=_title(title, note)))
