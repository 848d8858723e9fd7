"""Reproducible benchmark of lung and COVID-19 lesion segmentation models (Bizopoulos et al., 2020).

One sub-package per layer; each may import only the layers below it (``make lint`` checks it):

    grid, site      the grid runner and its engines; the results website and publishing
    results         aggregation: leaderboards, rankings, findings, recipes
    evaluation      evaluation, metrics, speed, figures
    training        the training loop, its inputs fingerprint, augmentation, losses
    model           the smp factory, model folders and checkpoints, inference, devices, ImageNet weights
    data            raw data (download or phantom), preprocessing, the prepared arrays
    core            paths, params, ids, the experiments registry, fingerprints, records, outputs (no torch)

``pipeline.predict`` (segment a scan) and ``pipeline.submit`` (score an outside model) are the public entry
points; every stage runs as ``python -m pipeline.<layer>.<module>``, exactly as dvc.yaml calls it.
"""
