"""A model card per model, in the Hugging Face hub's format, from the model's results.

The card is the ``README.md`` of a hub-ready model folder (``python -m pipeline.site.publish --hub DIR``): front
matter that the hub reads (``library_name: segmentation-models-pytorch``, ``pipeline_tag:
image-segmentation``, licence, tags, datasets, and a ``model-index`` with the test metrics, built with
``huggingface_hub``'s own ``ModelCardData`` and ``EvalResult``), then how to load the model with
``smp.from_pretrained``, how to segment a CT volume with this project's preprocessing, the metrics with their
intervals, the training setup, the data (with a plain warning when it is synthetic), provenance and the
intended use and limits. Everything comes from results/<id>/metrics.json and the model folder.
"""

from pathlib import Path

from pipeline.core.experiments import experiment
from pipeline.site.data import ARCHITECTURE_NAMES, EXPERIMENT_BLURBS, EXPERIMENT_NAMES, SYNTHETIC_SOURCES

PROJECT = "covid-ct-benchmark"
PAPER = "https://arxiv.org/abs/2009.06412"
# Metric id -> (model-index type, name, scale).
CARD_METRICS = {
    "dice": ("dice", "Dice (mean over test volumes, native geometry)", 1),
    "nsd": ("normalized_surface_dice", "NSD (normalised surface distance)", 1),
    "hd95": ("hausdorff_distance_95", "HD95 (mm, lower is better)", 1),
    "sensitivity": ("recall", "Sensitivity (mean over volumes)", 1),
    "specificity": ("specificity", "Specificity (mean over volumes)", 1),
    "precision": ("precision", "Precision (mean over volumes)", 1),
}
DATASETS = {
    "download": ("MedSeg COVID-19 CT segmentation (train) and 9 Radiopaedia volumes (test)", "medseg-covid19-ct"),
    "phantom": ("synthetic chest CT phantoms of this project (not real patients)", "covid-ct-benchmark-phantom"),
}

TEMPLATE = """---
{{ card_data }}
---

# {{ m.id }}

{{ warning }}A **{{ architecture }}** model with a **{{ m.encoder }}** encoder (initialised {{ init }}) for
**{{ experiment }}** on CT: {{ blurb }} One of the models of the {{ project }} benchmark, which reproduces
Bizopoulos, Vretos and Daras, *Comprehensive Comparison of Deep Learning Models for Lung and COVID-19 Lesion
Segmentation in CT scans* ({{ paper }}).

Status: **{{ m.status }}**{{ status_note }}

## Load it

```python
import segmentation_models_pytorch as smp

model = smp.from_pretrained("<this folder or hub repository>")  # 1 input channel, 1 output logit per pixel
```

## Segment a CT volume

The model expects this project's preprocessing ({{ "preprocessing.json" }}): {{ preprocessing.input }} in
Hounsfield units, normalised as {{ preprocessing.normalisation }} (hu_offset {{ preprocessing.hu_offset }},
hu_scale {{ preprocessing.hu_scale }}, size {{ preprocessing.size }}); slices are {{ preprocessing.slices }}.
The project's `predict` applies it and writes a NIfTI mask with the scan's geometry:

```sh
python -m pipeline.predict --model <this folder> scan.nii.gz mask.nii.gz{{ lung_mask }}
```

## Test metrics

Mean over the {{ volumes }} test volumes, each scored in its own geometry, with a {{ confidence }}% Student t
interval over volumes (none from fewer than 5 volumes; HD95: no interval of its mean, which the median's
order-statistic interval on the model page replaces). NSD at {{ tolerance }} mm tolerance and HD95 by
{{ implementation }}.

| metric | value | {{ confidence }}% interval | direction |
|---|---:|---|---|
{% for row in metrics %}| {{ row.name }} | {{ row.value }} | {{ row.interval }} | {{ row.direction }} |
{% endfor %}

{% if m.get("rank") is not none %}Rank {{ m.rank }} of {{ ranked }} on Dice in its experiment, {{ confidence }}%
rank set {{ m.rank_low }}-{{ m.rank_high }} (every pair of the experiment's checkpoints compared at once; tier
{{ m.tier }}: 1 means it cannot be excluded from being the best).{% endif %}{% if m.get("seeds") %} Trained with
{{ m.seeds }} seeds: Dice standard deviation over seeds {{ seed_sd }}.{% endif %}

## Training

{{ m.loss }} loss, Adam (learning rate {{ lr }}), batch size {{ batch }}, {{ m.epochs }} epochs, the epoch with the
lowest validation loss kept ({{ m.best_epoch }}); augmentation with flips, rotation and scaling; working size
{{ m.size }} x {{ m.size }}. Seed {{ m.seed }} (derived from the model's id and the base seed {{ base_seed }}).
{{ params }} parameters, {{ gflops }} GFLOPs per forward pass at {{ m.size }} px. Trained on {{ m.device }}
with torch {{ torch }}.

## Data

{{ data }}

## Provenance

| | |
|---|---|
| project revision | `{{ revision }}` |
| data source, profile | `{{ m.data_source }}`, `{{ m.profile }}` |
| training inputs (data, code, params) | `{{ m.get("inputs", "unknown") }}` |
| weights | `model.safetensors`, {{ size_bytes }} bytes, sha256 `{{ sha256 }}` |

## Intended use and limitations

A research benchmark model, to compare segmentation methods on the same data and protocol. **Not a medical
device**: not validated for diagnosis, treatment or any clinical decision. Its test set has {{ volumes }} volumes,
so its numbers carry the uncertainty shown above; it has only seen the data described here, and CT from other
scanners, protocols or populations may give worse results.

## Licence

Code and weights: MIT (the {{ project }} repository). The data keep their own terms (the MedSeg
dataset's and Radiopaedia's for the real data).
"""


def _fmt(value, decimals: int) -> str:
    return "n/a" if value is None else f"{float(value):.{decimals}f}"


def card_data(m: dict):
    """The hub front matter, model-index included."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset_name, dataset_type = DATASETS.get(m["data_source"], (m["data_source"], m["data_source"]))
    results = [
        EvalResult(
            task_type="image-segmentation", task_name=f"{EXPERIMENT_NAMES[m['experiment']]} on CT",
            dataset_type=dataset_type, dataset_name=dataset_name, dataset_split="test",
            metric_type=kind, metric_name=name, metric_value=round(float(m[metric]), 4),
        )
        for metric, (kind, name, _) in CARD_METRICS.items()
        if m.get(metric) is not None
    ]  # fmt: skip
    tags = ["segmentation-models-pytorch", "semantic-segmentation", "pytorch", "medical-imaging", "ct", "covid-19",
            f"{experiment(m['experiment']).target}-segmentation"]  # fmt: skip
    if m["data_source"] in SYNTHETIC_SOURCES:
        tags.append("synthetic-data")
    return ModelCardData(
        library_name="segmentation-models-pytorch", pipeline_tag="image-segmentation", license="mit", tags=tags,
        datasets=[dataset_type], model_name=m["id"], eval_results=results or None, metrics=["dice"],
    )  # fmt: skip


def render(m: dict, preprocessing: dict, train: dict, revision: str, ranked: int, tolerance_mm: float) -> str:
    """The card's text for the model whose results/<id>/metrics.json is ``m``; ``train`` is the `train`
    params it was trained with (models/train_inputs.json)."""
    from huggingface_hub import ModelCard

    synthetic = m["data_source"] in SYNTHETIC_SOURCES
    rows = []
    for metric, (_, name, _) in CARD_METRICS.items():
        if m.get(metric) is None:
            continue
        decimals = 2 if metric == "hd95" else 4
        low, high = m.get(f"{metric}_ci_low"), m.get(f"{metric}_ci_high")
        rows.append({
            "name": name, "value": _fmt(m[metric], decimals),
            "interval": f"[{_fmt(low, decimals)}, {_fmt(high, decimals)}]" if low is not None else "",
            "direction": "lower is better" if metric == "hd95" else "higher is better",
        })  # fmt: skip
    if synthetic:
        source = SYNTHETIC_SOURCES[m["data_source"]]
        warning = (f"> **Synthetic data.** This model was trained and tested on {source}, not on patients' CT: "
                   "its numbers test the pipeline and say nothing about real scans.\n\n")  # fmt: skip
        data = f"Trained and tested on {source} (profile `{m['profile']}`)."
    else:
        warning = ""
        data = ("Training: the MedSeg COVID-19 CT segmentation dataset (100 axial slices, slices 0-79 train, 80-99 "
                "validation). Test: 9 Radiopaedia CT volumes (829 slices) with lung and lesion masks.")  # fmt: skip
    status_note = "" if m["status"] == "ok" else f": {m.get('status_reason', '')}"
    card = ModelCard.from_template(
        card_data(m), template_str=TEMPLATE, m=m, preprocessing=preprocessing, warning=warning,
        architecture=ARCHITECTURE_NAMES.get(m["architecture"], m["architecture"]),
        experiment=EXPERIMENT_NAMES[m["experiment"]], blurb=EXPERIMENT_BLURBS[m["experiment"]],
        init="from ImageNet" if m["encoder_weights"] == "imagenet" else "at random", project=PROJECT, paper=PAPER,
        status_note=status_note, lung_mask=" --lung-mask lungs.nii.gz" if m["experiment"] == "lesion_b" else "",
        volumes=m.get("dice_volumes", "the"), confidence=95, tolerance=tolerance_mm,
        implementation=m.get("implementation", {}).get("library", "MONAI"), metrics=rows, ranked=ranked,
        seed_sd=_fmt(m.get("seed_dice_sd"), 4), lr=train.get("learning_rate", "1e-3"),
        batch=train.get("batch_size", 2), base_seed=m.get("base_seed", 0), params=f"{int(m['params']):,}",
        gflops=_fmt(m.get("gflops"), 2), torch=m.get("software", {}).get("torch", "unknown"), data=data,
        revision=revision, size_bytes=f"{int(m['checkpoint']['bytes']):,}", sha256=m["checkpoint"]["sha256"],
    )  # fmt: skip
    return str(card)


def write(folder: Path, m: dict, preprocessing: dict, train: dict, revision: str, ranked: int,
          tolerance_mm: float) -> Path:  # fmt: skip
    path = Path(folder) / "README.md"
    path.write_text(render(m, preprocessing, train, revision, ranked, tolerance_mm) + "\n")
    return path
