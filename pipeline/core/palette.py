"""The colours of a prediction against its ground truth, the same in the mask pictures, the volume viewer and
the pages' legends: true positives green, false positives red, false negatives blue."""

COLOURS = {"tp": (40, 200, 80), "fp": (230, 50, 50), "fn": (60, 120, 255)}
