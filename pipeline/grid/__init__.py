"""Running the grid outside DVC's per-stage bookkeeping: the runner, its engines (serial, Ray), one cell's run,
repeats. The driver imports no torch."""
