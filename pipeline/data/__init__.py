"""The study's data: the six raw files (downloaded or synthesised), their validation, preprocessing, and the
prepared arrays later stages read."""
