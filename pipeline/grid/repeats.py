"""Choose the models trained again with other seeds: the top K of each experiment of the current leaderboard.

    python -m pipeline.grid.repeats --top 3 --seeds 1 2      # writes repeats.models and repeats.seeds in params.yaml
    python -m pipeline.grid.repeats --top 3 --dry-run        # only prints them

DVC's matrix needs the list of repeated models in params.yaml, so a rule such as "the top K" is resolved here,
from results/leaderboard.csv (models with status ok, by rank on Dice), into that list; then `dvc repro`
trains the new repeat@<id>-<seed> cells. The same can be set by hand, or with
``dvc exp run -S 'repeats.models=[...]' -S 'repeats.seeds=[1,2]'``.
"""

from pathlib import Path

import pandas as pd
import yaml

from pipeline.core.config import ConfigError, load_params, parse_params
from pipeline.core.errors import ArgumentParser, DataError, PipelineError, run_stage
from pipeline.core.paths import PARAMS_FILE, RESULTS_DIR


def top_models(board: pd.DataFrame, k: int) -> list[str]:
    """The ids of the ``k`` best-ranked models with status ok of each experiment, in grid order."""
    ok = board[board["status"] == "ok"].dropna(subset=["rank"])
    chosen = set()
    for _, group in ok.groupby("experiment", sort=False):
        chosen |= set(group.sort_values(["rank", "id"]).head(k)["id"])
    return [model for model in board["id"] if model in chosen]


def main() -> None:
    parser = ArgumentParser(description="Put the top K models of each experiment into repeats.models.")
    parser.add_argument("--top", type=int, required=True, help="models per experiment")
    parser.add_argument("--seeds", type=int, nargs="+", help="base seeds of the repeats (default: keep params')")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    if args.top < 1:
        raise PipelineError(f"--top {args.top}: must be at least 1")
    params = load_params(args.params)
    path = args.results / "leaderboard.csv"
    try:
        board = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(path, "is missing; run the pipeline first (`dvc repro`)") from None
    if not {"id", "experiment", "status", "rank"} <= set(board.columns):
        raise DataError(path, "has no ranks; rerun `dvc repro aggregate`")
    models = top_models(board, args.top)
    seeds = args.seeds if args.seeds is not None else list(params.repeats.seeds)
    raw = yaml.safe_load(args.params.read_text())
    raw["repeats"] = {"models": models, "seeds": seeds}
    try:
        parse_params(raw)
    except ConfigError as error:
        raise PipelineError(f"{args.params}: {error}") from None
    print(f"repeats: {len(models)} models x {len(seeds)} seeds: {', '.join(models)}; seeds {seeds}")
    if not args.dry_run:
        from dvc.utils.serialize import dump_yaml

        dump_yaml(args.params, raw)
        print(f"wrote repeats into {args.params}; now run: dvc repro")


if __name__ == "__main__":
    run_stage(main)
