"""A scored submission's report, as a pull request that adds it gets it: the board's own numbers, in Markdown.

    python -m pipeline.results.report NAME                 # after `dvc repro aggregate`; prints to stdout
    python -m pipeline.results.report NAME --out report.md

Reads results/NAME/metrics.json and results/summary.json (what the leaderboard shows) and writes: Dice with its
interval, NSD and HD95, the rank among the grid's ranked models plus this one with its rank set and tier, and the
comparisons with the grid's leader and the baselines of similar size (relevance margin, exact Wilcoxon, Holm
over the submission's own comparisons). deploy/score-submission.sh runs it for the pull-request workflow
(deploy/submission-pr.yml).
"""

import math
from pathlib import Path

from pipeline.core.errors import ArgumentParser, DataError, run_stage
from pipeline.core.outputs import read_json, write_text_atomically
from pipeline.core.paths import RESULTS_DIR
from pipeline.results.ranking import tier_words

AGGREGATE = "score and rank it first (`dvc repro aggregate`)"


def _number(value, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.{decimals}f}"


def _interval(record: dict, metric: str, decimals: int) -> str:
    low, high = record.get(f"{metric}_ci_low"), record.get(f"{metric}_ci_high")
    return f" [{_number(low, decimals)}, {_number(high, decimals)}]" if low is not None and high is not None else ""


def report(name: str, results_dir: Path = RESULTS_DIR) -> str:
    """The Markdown report of the scored submission ``name``."""
    path = results_dir / name / "metrics.json"
    record = read_json(path, AGGREGATE)
    if record.get("source") != "external":
        raise DataError(path, f"is not the record of a submission; {AGGREGATE}")
    summary = read_json(results_dir / "summary.json", AGGREGATE)
    level = f"{summary['bootstrap']['confidence']:.0%}"
    margin = summary["separations"]["relevant_difference"]
    volumes = summary["test_volumes"]
    lines = [
        f"## Submission `{name}` ({record['experiment']})",
        "",
        f"Scored by the benchmark's own code on its {volumes} test volumes (data `{record.get('data_source')}`, "
        f"profile `{record.get('profile')}`), ranked as the leaderboard ranks it.",
        "",
        "| | |",
        "|---|---|",
        f"| Dice (primary) | **{_number(record['dice'], 4)}**{_interval(record, 'dice', 4)} ({level} t interval "
        "over volumes) |",
        f"| NSD | {_number(record['nsd'], 4)}{_interval(record, 'nsd', 4)} |",
        f"| HD95 | mean {_number(record['hd95'], 2)} mm; median {_number(record.get('hd95_median'), 2)} mm"
        f"{_interval(record, 'hd95_median', 2)} |",
    ]
    if record.get("rank") is not None:
        lines.append(f"| rank | {record['rank']} of {record.get('ranked_among', '?')} (the grid's ranked checkpoints "
                     f"plus this one); {level} rank set {record['rank_low']}-{record['rank_high']} |")  # fmt: skip
        lines.append(f"| tier | {tier_words(int(record['tier']), int(record['rank']))} |")
    comparisons = record.get("comparisons") or []
    if comparisons:
        lines += [
            "",
            f"Against the grid's leader and the checkpoints of similar size, on Dice: better or worse only beyond "
            f"{margin:g} (exact Wilcoxon test of the differences beyond it, Holm over these {len(comparisons)}).",
            "",
            "| against | role | difference | better / worse on | p (Holm) | verdict |",
            "|---|---|---:|---|---:|---|",
        ]
        lines += [f"| {row['against']} | {row.get('role', '')} | {row['difference']:+.4f} | {row['wins']} / "
                  f"{row['losses']} of {row['pairs']} | {row['p_holm']:.3f} | {row['verdict']} |"
                  for row in comparisons]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = ArgumentParser(description="A scored submission's report, in Markdown.")
    parser.add_argument("name", help="the submission's name (submissions/<name>/)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, help="write it here instead of printing it")
    args = parser.parse_args()
    text = report(args.name, args.results)
    if args.out is None:
        print(text, end="")
    else:
        write_text_atomically(args.out, text)
        print(f"report: {args.out}")


if __name__ == "__main__":
    run_stage(main)
