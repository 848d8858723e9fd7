"""params.yaml, loaded once into frozen dataclasses.

Every knob of every stage lives in params.yaml, one section per stage. The file is composed by Hydra from
``conf/`` (the paper's protocol plus the chosen profile): ``dvc exp run -S profile=demo``. Loading is strict:
an unknown key, a missing key, a wrong type or a value outside its choices stops the stage at start with one
line that names the key and lists what is valid.
"""

import dataclasses
import math
import string
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.core import experiments
from pipeline.core.errors import PipelineError
from pipeline.core.paths import PARAMS_FILE

DataSource = Literal["phantom", "download"]
# Bounds that keep a value from asking for the impossible (an allocation of terabytes, a division by 1e-300):
# working size and image sizes in pixels (the paper's are 512 and 630), the normalisation (HU + hu_offset) /
# hu_scale that keeps CT values of a few thousand HU near the unit range, the slices of a synthetic volume.
SIZE_RANGE = (32, 2048)
HU_OFFSET_RANGE = (-4096.0, 4096.0)
HU_SCALE_RANGE = (1.0, 10000.0)
SLICES_RANGE = (1, 2000)


def _within(name: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{name} must lie between {low:g} and {high:g}, not {value:g}")


class ConfigError(PipelineError):
    pass


@dataclass(frozen=True)
class PhantomParams:
    """The synthetic CT generator: sizes and seed. Slice counts are the real data's (100 train, 9 volumes)."""

    seed: int
    train_size: int
    test_size: int
    test_slices_min: int
    test_slices_max: int
    noise_hu: float

    def __post_init__(self) -> None:
        _within("train_size", self.train_size, SIZE_RANGE)
        _within("test_size", self.test_size, SIZE_RANGE)
        _within("test_slices_max", self.test_slices_max, SLICES_RANGE)
        if not 1 <= self.test_slices_min <= self.test_slices_max:
            raise ValueError("need 1 <= test_slices_min <= test_slices_max")
        if self.noise_hu < 0:
            raise ValueError("noise_hu must not be negative")


@dataclass(frozen=True)
class DownloadParams:
    """Where the six real files come from; ``url`` holds ``{id}``, the Google Drive file id."""

    url: str
    timeout_s: float
    retries: int

    def __post_init__(self) -> None:
        try:  # {id} and nothing else: the URL is filled with str.format
            fields = [name for _, name, _, _ in string.Formatter().parse(self.url) if name is not None]
        except ValueError as error:
            raise ValueError(f"url is not a template with {{id}} ({error})") from None
        if fields != ["id"]:
            others = [f"{{{name}}}" for name in fields if name != "id"]
            found = ", ".join(others) or "none"
            raise ValueError(f"url must contain the placeholder {{id}} once and no other (found {found})")
        if self.timeout_s <= 0 or self.retries < 0:
            raise ValueError("timeout_s must be positive and retries not negative")


@dataclass(frozen=True)
class DataParams:
    source: DataSource
    phantom: PhantomParams
    download: DownloadParams


@dataclass(frozen=True)
class PreprocessParams:
    """PROTOCOL.md, Preprocessing: working size, x -> (x + hu_offset) / hu_scale, train/validation split."""

    size: int
    hu_offset: float
    hu_scale: float
    train_slices: int

    def __post_init__(self) -> None:
        _within("size", self.size, SIZE_RANGE)
        if self.size % 32:  # every encoder of the grid downsamples by 32
            raise ValueError("size must be a multiple of 32")
        _within("hu_offset", self.hu_offset, HU_OFFSET_RANGE)
        _within("hu_scale", self.hu_scale, HU_SCALE_RANGE)
        if self.train_slices < 1:
            raise ValueError("train_slices must be at least 1")


def _check_names(kind: str, names: list[str], valid: list[str] | tuple[str, ...]) -> None:
    if not names:
        raise ValueError(f"{kind} must list at least one name")
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"unknown {kind[:-1]} '{unknown[0]}'; valid: {', '.join(valid)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{kind} lists a name twice")


@dataclass(frozen=True)
class GridParams:
    """The grid of models: every combination is one model (PROTOCOL.md, Models: 3 x 4 x 25 x 2 = 600)."""

    experiments: list[str]
    architectures: list[str]
    encoders: list[str]
    weights: list[str]

    def cells(self) -> list:
        """Every model of the grid (pipeline.core.cells.Cell), in the order of dvc.yaml's matrix."""
        from pipeline.core.cells import grid_cells

        return grid_cells(self.experiments, self.architectures, self.encoders, self.weights)

    def __post_init__(self) -> None:
        # Architectures and encoders are checked against segmentation-models-pytorch's own lists by the stages
        # that build networks (pipeline.model.factory.check_names): reading params needs no torch.
        from pipeline.core.cells import WEIGHTS, Cell, parse_cell_id

        _check_names("experiments", self.experiments, experiments.NAMES)
        _check_names("weights", self.weights, WEIGHTS)
        for kind, names in (("architectures", self.architectures), ("encoders", self.encoders)):
            _check_names(kind, names, names)
        for architecture in self.architectures:
            for encoder in self.encoders:  # every part must fit the id grammar, and read back as itself
                cell = Cell(self.experiments[0], architecture, encoder, self.weights[0])
                if parse_cell_id(cell.id) != cell:
                    raise ValueError(
                        f"architecture '{architecture}' with encoder '{encoder}' makes the id "
                        f"{cell.id}, which reads back differently (no '-' in an architecture)"
                    )


@dataclass(frozen=True)
class RepeatsParams:
    """Training variance: these models of the grid are trained again, once per base seed of ``seeds`` (the
    main run uses ``train.seed``). Each repeat is a DVC stage of its own, ``repeat@<id>-<seed>``."""

    models: list[str]
    seeds: list[int]

    def __post_init__(self) -> None:
        from pipeline.core.cells import parse_cell_id

        for model in self.models:
            try:
                parse_cell_id(model)
            except ValueError as error:
                raise ValueError(f"models: {error}") from None
        if len(set(self.models)) != len(self.models) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("models and seeds must not list a value twice")
        if any(seed < 0 for seed in self.seeds):
            raise ValueError("seeds must not be negative")
        if bool(self.models) != bool(self.seeds):
            raise ValueError("give both models and seeds, or neither")


@dataclass(frozen=True)
class AugmentParams:
    """PROTOCOL.md, Training: random flips, rotation and scale, the same for image and masks."""

    hflip: float
    vflip: float
    rotation_deg: float
    scale_min: float
    scale_max: float
    padding: Literal["air", "zero_hu"]
    image_interpolation: Literal["bilinear", "nearest"]

    def __post_init__(self) -> None:
        if not (0 <= self.hflip <= 1 and 0 <= self.vflip <= 1):
            raise ValueError("flip probabilities must lie in [0, 1]")
        if not 0 < self.scale_min <= self.scale_max <= 10:
            raise ValueError("need 0 < scale_min <= scale_max <= 10")
        _within("rotation_deg", self.rotation_deg, (0.0, 180.0))  # drawn from U[-rotation_deg, rotation_deg)


@dataclass(frozen=True)
class TrainParams:
    epochs: int
    batch_size: int
    learning_rate: float
    loss: Literal["dice_paper", "dice_code"]
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    augment: AugmentParams

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs and batch_size must be at least 1 and learning_rate positive")


@dataclass(frozen=True)
class EvaluateParams:
    """Test metrics. ``nsd_tolerance_mm_*``: the normalised surface distance's tolerance (Ma et al.'s COVID-19
    CT benchmark: 1 mm for lungs, 3 mm for lesions). ``workers``: evaluation processes, 0 for one per CPU;
    it changes how fast, never what is computed."""

    threshold: float
    bootstrap_samples: int
    confidence: float
    seed: int
    nsd_tolerance_mm_lung: float
    nsd_tolerance_mm_lesion: float
    workers: int

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1 or not 0 < self.confidence < 1 or self.bootstrap_samples < 1:
            raise ValueError("threshold and confidence must lie in (0, 1), bootstrap_samples be at least 1")
        if min(self.nsd_tolerance_mm_lung, self.nsd_tolerance_mm_lesion) <= 0:
            raise ValueError("the NSD tolerances must be positive (millimetres)")
        if self.workers < 0:
            raise ValueError("workers must be 0 (one per CPU) or more")

    def nsd_tolerance_mm(self, experiment: str) -> float:
        """The tolerance of the structure an experiment segments (pipeline.core.experiments)."""
        return getattr(self, f"nsd_tolerance_mm_{experiments.experiment(experiment).target}")


@dataclass(frozen=True)
class RankingParams:
    """How rankings decide (pipeline.results.ranking): ``permutations`` of the max-T null when enumerating every
    within-volume permutation is too many; ``relevant_difference``: the smallest difference of Dice (the primary
    endpoint) that a submission's or an effect's interval must clear before it is called better or worse."""

    permutations: int
    relevant_difference: float

    def __post_init__(self) -> None:
        if self.permutations < 1000:
            raise ValueError("permutations must be at least 1000 (p-values finer than 1/1000)")
        if not 0 <= self.relevant_difference < 1:
            raise ValueError("relevant_difference must lie in [0, 1)")


@dataclass(frozen=True)
class ViewerParams:
    """The volume viewer of the model pages (pipeline.evaluation.viewer_data): which test volumes it shows, per model —
    ``median_target`` (the volume whose target is of median size: a typical case, the same for every model of
    an experiment), ``worst`` (the model's own lowest-Dice volume) or a volume's file name — and the largest
    in-plane size it keeps."""

    volumes: list[str]
    size: int

    def __post_init__(self) -> None:
        if not self.volumes:
            raise ValueError("volumes must list at least one volume (median_target, worst or a file name)")
        if len(set(self.volumes)) != len(self.volumes):
            raise ValueError("volumes lists a value twice")
        for volume in self.volumes:
            if volume not in ("median_target", "worst") and not volume.replace(".nii", "").replace(".gz", "").isdigit():
                raise ValueError(f"volumes: '{volume}' is not median_target, worst or a test volume's file name")
        if self.size < 32:
            raise ValueError("size must be at least 32 pixels")


@dataclass(frozen=True)
class SpeedParams:
    """The dedicated timing of each network (pipeline.evaluation.speed): ``warmup`` untimed passes, then the median of
    ``repeats`` timed ones, at a fixed batch size."""

    batch_size: int
    warmup: int
    repeats: int

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.warmup < 0 or self.repeats < 1:
            raise ValueError("batch_size and repeats must be at least 1, warmup not negative")


@dataclass(frozen=True)
class SiteParams:
    """The website. ``remote_url``: the public HTTP address of the published DVC remote (``pipeline.site.publish``);
    when set, every model page gives a direct link to its weights. ``repo_url``: the public address of this
    project's repository, for the footer and the ``dvc get`` commands. Empty: not published yet."""

    remote_url: str
    repo_url: str

    def __post_init__(self) -> None:
        for name in ("remote_url", "repo_url"):
            url = getattr(self, name)
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be empty or an http(s):// address")
            if any(character in url for character in " \"'<>()[]{}|\\`") or not url.isprintable():
                raise ValueError(
                    f"{name} must be a plain URL (no spaces, control characters, quotes, brackets or backslashes)"
                )


@dataclass(frozen=True)
class Params:
    profile: str
    data: DataParams
    preprocess: PreprocessParams
    grid: GridParams
    train: TrainParams
    repeats: RepeatsParams
    evaluate: EvaluateParams
    ranking: RankingParams
    speed: SpeedParams
    viewer: ViewerParams
    site: SiteParams

    def __post_init__(self) -> None:
        grid = {cell.id for cell in self.grid.cells()}
        outside = [model for model in self.repeats.models if model not in grid]
        if outside:
            raise ValueError(f"repeats.models lists {outside[0]}, which is not a model of the grid")
        if self.train.seed in self.repeats.seeds:
            raise ValueError(f"repeats.seeds lists {self.train.seed}, the main run's train.seed")

    def runs(self) -> list:
        """Every training run (pipeline.core.cells.Run): the grid's main runs, then the repeats."""
        from pipeline.core.cells import Run, parse_cell_id

        repeats = [Run(parse_cell_id(model), seed) for model in self.repeats.models for seed in self.repeats.seeds]
        return [Run(cell) for cell in self.grid.cells()] + repeats


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return " | ".join(map(str, typing.get_args(kind)))
    return getattr(kind, "__name__", str(kind))


def _convert(value: Any, kind: Any, key: str) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a section with keys {_field_names(kind)}, not {value!r}")
        return _build(kind, value, key)
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise ConfigError(f"'{key}' is {value!r}; valid choices: {', '.join(map(str, choices))}")
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"'{key}' must be a finite number, not {value!r}")
        return float(value)
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ConfigError(f"'{key}' must be a list, not {value!r}")
        return [_convert(element, item, f"{key}[{index}]") for index, element in enumerate(value)]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"'{key}' must be of type {_type_name(kind)}, not {value!r}")
    return value


def _field_names(cls: type) -> str:
    return ", ".join(field.name for field in dataclasses.fields(cls))


def _build(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    where = f"section '{prefix}'" if prefix else "the top level"
    unknown = sorted(set(raw) - set(names), key=str)
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' in {where}; valid keys: {', '.join(names)}")
    missing = [name for name in names if name not in raw]
    if missing:
        raise ConfigError(f"missing key '{missing[0]}' in {where}; it needs: {', '.join(names)}")
    values = {name: _convert(raw[name], hints[name], f"{prefix}.{name}" if prefix else name) for name in names}
    try:
        return cls(**values)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def parse_params(raw: Any) -> Params:
    """Validate an already-parsed params mapping (raises ConfigError without the file name)."""
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping of sections at the top level")
    return _build(Params, raw)


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; every problem becomes one ConfigError line naming the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the project root)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a params file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot be read (permission denied)") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a params file") from None
    try:
        return parse_params(raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def as_dict(params: Any) -> dict[str, Any]:
    """A params section as plain data, for provenance records."""
    return dataclasses.asdict(params)
