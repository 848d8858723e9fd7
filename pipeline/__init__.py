"""Reproducible benchmark of lung and COVID-19 lesion segmentation models (Bizopoulos et al., 2020).

One module per pipeline stage, each runnable as ``python -m pipeline.<stage>`` exactly as dvc.yaml calls it.
"""
