"""Scoring trained networks on the test volumes: evaluation, metrics, surface distances, speed, figures and the
viewer's data."""
