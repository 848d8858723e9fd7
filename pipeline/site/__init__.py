"""The results website: page contexts, tables, charts, model cards and publishing. It shows results, it computes
none; no torch."""
