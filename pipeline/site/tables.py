"""The leaderboard table: what a researcher choosing a model reads first, as one HTML table.

Columns come in families, each on one scale: our metrics in [0, 1] (Dice with its interval drawn as a bar in
its cell), distances in mm, the rank with its rank set and tier, the seed spread, size and speed
(the speed column names its device), and the paper-compatible numbers in percent, grouped and labelled as
such. Each header says which direction is better. A few columns are shown by default, so the table fits a
laptop screen; the others are one click away in the column picker (leaderboard.js), and the model column
stays in place while the rest scrolls on a phone. Every cell carries its sort key (``data-sort``).

Values are escaped here (markupsafe), never trusted: the table is raw HTML in the page's Markdown. At 600 models
a leaderboard has 200 rows, so the markup is kept lean: what JavaScript can read from a row (its id, its text) is
not written twice.
"""

import math
from dataclasses import dataclass

import pandas as pd
from markupsafe import Markup, escape

from pipeline.results import schema

# The status words of the CSV, the filter and every page: one vocabulary ("degenerate": it did not learn).
STATUS_LABELS = {"ok": "", "failed": "failed", "degenerate": "degenerate"}


@dataclass(frozen=True)
class Column:
    key: str  # the hash-state name of the column
    header: str
    family: str  # columns of one family share a scale and are picked together
    direction: str  # "up": higher is better, "down": lower is better, "": not a score
    shown: bool  # visible by default
    title: str  # the header's tooltip: what the number is


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# The table's columns -> the published field each shows: its tooltip is that field's meaning
# (pipeline.results.schema), so the table never says something else than the reference.
FIELDS = {
    "dice": "dice",
    "nsd": "nsd",
    "hd95": "hd95",
    "seeds": "seed_dice_sd",
    "hd95_median": "hd95_median",
    "missed": "missed_volumes",
    "params": "params_m",
    "speed": "infer_images_per_s",
    "gflops": "gflops",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "precision": "precision",
    "slice": "slice_dice",
    "paper": "paper_dice",
    "reported": "paper_reported_dice",
    "epoch": "best_epoch",
}
# key, header, family, direction, shown by default
LAYOUT = [
    ("dice", "Dice", "overlap", "up", True), ("rank", "Rank (rank set)", "rank", "", True),
    ("nsd", "NSD", "boundary", "up", True), ("hd95", "HD95 mm", "boundary", "down", True),
    ("seeds", "Seed SD", "seeds", "down", True), ("hd95_median", "HD95 median mm", "boundary", "down", False),
    ("missed", "Missed", "boundary", "down", False), ("params", "Params M", "size", "", True),
    ("speed", "Images/s", "speed", "up", True), ("gflops", "GFLOPs", "size", "", False),
    ("sensitivity", "Sens.", "overlap", "up", False), ("specificity", "Spec.", "overlap", "up", False),
    ("precision", "Prec.", "overlap", "up", False), ("slice", "Slice Dice", "overlap", "up", False),
    ("paper", "Paper Dice %", "paper", "up", False), ("reported", "Table II %", "paper", "up", False),
    ("epoch", "Best epoch", "training", "", False),
]  # fmt: skip


def _title(key: str, level: str, speed_device: str) -> str:
    if key == "rank":
        rank = schema.field(schema.LEADERBOARD, "rank")
        parts = [rank.description, f"in brackets: {schema.field(schema.LEADERBOARD, 'rank_low').description}",
                 f"T: the tier, {schema.field(schema.LEADERBOARD, 'tier').description}"]  # fmt: skip
        return schema.described("; ".join(parts), level)
    field = schema.field(schema.LEADERBOARD, FIELDS[key])
    text = schema.described(field.description, level)
    if key == "dice":
        text += f", with its {level} t interval over volumes"
    if key == "speed":
        text += f", on {speed_device} (median of repeats)"
    return text + (f" ({field.unit})" if field.unit and field.unit not in text else "")


def columns(speed_device: str, synthetic: bool, level: str = "95%") -> list[Column]:
    reported = "Table II (real data)" if synthetic else "Table II"
    return [Column(key, header.replace("Table II", reported), family, direction, shown,
                   _title(key, level, speed_device)) for key, header, family, direction, shown in LAYOUT]  # fmt: skip


def _cell(content, sort, classes: str = "") -> Markup:
    sort_value = "" if _missing(sort) else f"{float(sort):.6g}" if not isinstance(sort, str) else sort
    klass = f' class="{classes}"' if classes else ""
    return Markup(f'<td data-sort="{escape(sort_value)}"{klass}>{content}</td>')


DASH = "&ndash;"


def _number(value, decimals: int, missing: str = DASH) -> Markup:
    if _missing(value):
        return Markup(f'<span class="na" title="not measured">{missing}</span>')
    return Markup(f"{float(value):.{decimals}f}")


def dice_cell(row: dict) -> Markup:
    """Dice, its interval as text, and the interval drawn as a bar over [0, 1] with the value marked."""
    dice, low, high = row["dice"], row["dice_ci_low"], row["dice_ci_high"]
    if _missing(dice):
        return _cell(_number(None, 4), None)
    bar = ""
    if not _missing(low) and not _missing(high):
        bar = (f'<span class="ci-bar" aria-hidden="true"><span class="ci" style="left:{100 * low:.1f}%;'
               f'width:{max(0.5, 100 * (high - low)):.1f}%"></span><span class="dot" style="left:{100 * dice:.1f}%">'
               f'</span></span><span class="ci-text">[{low:.3f}, {high:.3f}]</span>')  # fmt: skip
    return _cell(Markup(f'<span class="dice-value">{dice:.4f}</span>{bar}'), dice, "dice")


def rank_cell(row: dict) -> Markup:
    if _missing(row["rank"]):
        return _cell(Markup(f'<span class="na" title="not ranked: it did not learn or failed">{DASH}</span>'), None)
    tier = int(row["tier"])
    text = f'{int(row["rank"])} <span class="ci-text">({int(row["rank_low"])}{DASH}{int(row["rank_high"])})</span>'
    badge = f' <span class="tier tier-{min(tier, 3)}" title="tier {tier}">T{tier}</span>'
    return _cell(Markup(text + badge), f"{int(row['rank']):05d}{int(row['rank_high']):05d}")


def model_cell(row: dict, href: str) -> Markup:
    status = row["status"]
    label = STATUS_LABELS[status]
    badge = (
        f' <span class="badge badge-{status}" title="{escape(row["status_reason"])}">{label}</span>' if label else ""
    )
    if row.get("source") == "external":
        badge += (' <span class="badge badge-external" title="a submission: scored by the benchmark, not trained '
                  'by it">submission</span>')  # fmt: skip
    checkbox = (
        f'<input type="checkbox" class="pick" value="{escape(row["id"])}" aria-label="compare {escape(row["id"])}">'
    )
    link = f'<a href="{escape(href)}">{escape(row["id"])}</a>'
    return Markup(f'<td class="model" data-sort="{escape(row["id"])}">{checkbox}{link}{badge}</td>')


def row_cells(row: dict, paper_missing: str) -> dict[str, Markup]:
    seeds = row["seeds"]
    external = row.get("source") == "external"
    if external:
        seed_text = Markup(f'<span class="na" title="a submission: trained elsewhere">{DASH}</span>')
    elif _missing(seeds):
        seed_text = Markup('<span class="na" title="trained with one seed">1 seed</span>')
    else:
        interval = ""
        if not _missing(row["seed_dice_sd_ci_low"]):
            interval = f" [{row['seed_dice_sd_ci_low']:.3f}, {row['seed_dice_sd_ci_high']:.3f}]"
        seed_text = Markup(
            f'{_number(row["seed_dice_sd"], 4)} <span class="ci-text">({int(seeds)} seeds{interval})</span>'
        )
    epoch = _number(None, 0)
    if not external and not _missing(row["epochs"]):
        epoch = Markup(f"{_number(row['best_epoch'], 0)} / {int(row['epochs'])}")
    return {
        "rank": rank_cell(row),
        "dice": dice_cell(row),
        "nsd": _plain(row, "nsd"),
        "hd95": _plain(row, "hd95"),
        "hd95_median": _plain(row, "hd95_median"),
        "missed": _plain(row, "missed_volumes"),
        "seeds": _cell(seed_text, row["seed_dice_sd"]),
        "params": _plain(row, "params_m"),
        "speed": _plain(row, "infer_images_per_s"),
        "gflops": _plain(row, "gflops"),
        "sensitivity": _plain(row, "sensitivity"),
        "specificity": _plain(row, "specificity"),
        "precision": _plain(row, "precision"),
        "slice": _plain(row, "slice_dice"),
        "paper": _plain(row, "paper_dice"),
        "reported": _cell(_number(row["paper_reported_dice"], 2, paper_missing), row["paper_reported_dice"]),
        "epoch": _cell(epoch, row["best_epoch"]),
    }


# One rounding rule: a number is shown with the decimals its column is written with (pipeline.results.schema).
DECIMALS = schema.decimals(schema.LEADERBOARD)


def _plain(row, field: str) -> str:
    """A numeric cell of ``field`` at the schema's decimals, sorting on the value."""
    return _cell(_number(row[field], DECIMALS[field]), row[field])


def leaderboard_table(rows: pd.DataFrame, model_href, speed_device: str, synthetic: bool,
                      level: str = "95%") -> Markup:  # fmt: skip
    """The whole table, rows in rank order (models that did not learn or failed last)."""
    cols = columns(speed_device, synthetic, level)
    arrows = {"up": " ↑", "down": " ↓", "": ""}
    head = ['<th class="model" data-key="model" data-dir="" title="click to sort; tick models to compare">Model</th>']
    for column in cols:
        head.append(
            f'<th data-key="{column.key}" data-family="{column.family}" data-dir="{column.direction}"'
            f'{"" if column.shown else " hidden"} title="{escape(column.title)}">{escape(column.header)}'
            f'<span class="dir">{arrows[column.direction]}</span></th>'
        )
    body = []
    for row in rows.to_dict("records"):
        cells = row_cells(row, "not in the paper")
        attributes = (f'data-id="{escape(row["id"])}" data-status="{escape(row["status"])}" '
                      f'data-source="{escape(row["source"])}"')  # fmt: skip
        parts = [model_cell(row, model_href(row["id"]))]
        for column in cols:
            cell = cells[column.key]
            parts.append(cell if column.shown else Markup(str(cell).replace("<td ", "<td hidden ", 1)))
        body.append(Markup(f"<tr {attributes}>{''.join(parts)}</tr>"))
    return Markup(
        # Out of the search index: every page loads the index, and 200 rows of numbers would double it.
        '<div class="board-wrap" data-search-exclude><table class="board" id="leaderboard">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
