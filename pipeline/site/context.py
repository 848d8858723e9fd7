"""What every page of the site shares: where the results come from (``Provenance``), the banner about the data,
the note under every chart, and table rows for the templates."""

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.site.data import SYNTHETIC_SOURCES, Results


@dataclass(frozen=True)
class Provenance:
    """Where the results come from, printed on every model page and in every footer."""

    revision: str  # git commit of the project (with "+ uncommitted changes" when its code differs)
    train_inputs: dict  # models/train_inputs.json: code and data hashes, training params
    remote_url: str  # public address of the published DVC remote, "" when there is none
    dvc_cache: Path  # where the models' folder manifests are, to find direct links
    repo_url: str = ""  # public address of the project's repository, "" when there is none
    built: str = ""  # build date (UTC)


def page_banner(results: Results) -> dict:
    """What every page's banner says about the data behind it."""
    return {
        "synthetic": results.synthetic,
        "source": SYNTHETIC_SOURCES.get(results.data_source, results.data_source),
        "data_source": results.data_source,
        "profile": results.profile,
    }


def chart_note(results: Results) -> str:
    """What every chart title says under it when the data are not real."""
    if not results.synthetic:
        return ""
    return f"{SYNTHETIC_SOURCES[results.data_source]}, profile {results.profile}: not real CT"


def records(frame: pd.DataFrame) -> list[dict]:
    """A table's rows for a template, NaN as None."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]
