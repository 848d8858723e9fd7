"""``python -m pipeline.grid``: the grid runner (pipeline.grid.runner)."""

from pipeline.core.errors import run_stage
from pipeline.grid.runner import main

run_stage(main)
