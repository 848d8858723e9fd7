"""Synthetic chest CT in the study's layout: the offline stand-in for the MedSeg/Radiopaedia data.

Each synthetic patient is a 3-D anatomy described in normalised coordinates (x, y in [-1, 1], image left to
right and anterior to posterior; z in [0, 1], lung apex to base), so any in-plane size renders the same body.
A slice shows: the table, skin and subcutaneous fat, chest-wall muscle, ribs, sternum, scapulae and spine,
the mediastinum with heart, aorta and trachea/main bronchi, two lungs with parenchymal texture, a vascular
tree and airways, ground-glass opacities and consolidations inside the lungs, pleural effusions at the
dependent lung bases, the liver dome under the right lung, blur and scanner noise.

Label conventions are the real data's: lesions 1 ground-glass, 2 consolidation, 3 pleural effusion; lungs 1
(image left) and 2 (image right). Effusion lies in the pleural space, so it is outside the lung mask.
Everything is deterministic from the seed: patient p of the training set uses the stream (seed, 0, p) and
test volume k the stream (seed, 1, k), so one volume never depends on another.
"""

import math
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from pipeline.core.processes import worker_pool
from pipeline.data import rawdata

# Geometry: the field of view in millimetres and the slice spacing recorded in the NIfTI header.
FIELD_OF_VIEW_MM = 380.0
SLICE_SPACING_MM = 5.0
TRAIN_PATIENTS = 25  # 25 patients x 4 slices = the study's 100 training slices
Z_SCALE = 1.6  # one unit of z spans more body than one unit of x or y (the lungs are tall)

HU_AIR, HU_FAT, HU_MUSCLE, HU_SOFT, HU_BLOOD, HU_LIVER = -1000.0, -100.0, 50.0, 35.0, 45.0, 60.0
BODY_POWER = 2.4  # the chest is flatter than an ellipse
HU_LUNG, HU_BONE_CORTEX, HU_BONE_MARROW, HU_FLUID = -850.0, 750.0, 230.0, 12.0


@dataclass(frozen=True)
class SmoothField:
    """A smooth random 3-D field with values about N(0, 1): a sum of random plane waves."""

    wavevectors: np.ndarray  # (n, 3)
    phases: np.ndarray  # (n,)

    @classmethod
    def random(cls, rng: np.random.Generator, frequency: float, waves: int = 8) -> "SmoothField":
        directions = rng.normal(size=(waves, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        magnitudes = frequency * rng.uniform(0.6, 1.4, size=(waves, 1))
        return cls(directions * magnitudes, rng.uniform(0, 2 * np.pi, size=waves))

    def at(self, grid: "Grid", z: float) -> np.ndarray:
        """The field on a slice; cos(a + b) = cos a cos b - sin a sin b keeps it to outer products."""
        total = np.zeros((grid.size, grid.size), dtype=np.float32)
        for (kx, ky, kz), phase in zip(self.wavevectors, self.phases, strict=True):
            across = kx * grid.line
            down = ky * grid.line + (kz * z * Z_SCALE + phase)
            total += np.outer(np.cos(down), np.cos(across)) - np.outer(np.sin(down), np.sin(across))
        return total * np.float32(np.sqrt(2.0 / len(self.phases)))


@dataclass(frozen=True)
class Grid:
    """Pixel centres of a size x size slice in normalised coordinates; row index is y, column index is x."""

    size: int
    line: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def of(cls, size: int) -> "Grid":
        line = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2 - 1
        y, x = np.meshgrid(line, line, indexing="ij")
        return cls(size, line, x, y)


@dataclass(frozen=True)
class Lesion:
    label: int  # 1 ground-glass, 2 consolidation
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    contrast: float  # HU added (ground-glass) or the HU it takes (consolidation)
    shape: SmoothField


@dataclass(frozen=True)
class VascularTree:
    """Vessels and airways as capsules in (x, y, z): short, slightly curving segments that branch."""

    starts: np.ndarray  # (n, 3)
    ends: np.ndarray  # (n, 3)
    radii: np.ndarray  # (n,)
    airway: np.ndarray  # (n,) bool


@dataclass(frozen=True)
class Patient:
    body_width: float
    body_depth: float
    fat: float
    lung_width: float
    lung_height: float
    heart: float
    effusion: tuple[float, float]  # depth at the base of the image-left and image-right lungs
    lesions: tuple[Lesion, ...]
    tree: VascularTree
    outline: SmoothField
    rib_phase: float


def _smoothstep(value: float, low: float, high: float) -> float:
    t = min(max((value - low) / (high - low), 0.0), 1.0)
    return t * t * (3 - 2 * t)


def _ellipse(grid: Grid, cx: float, cy: float, a: float, b: float, power: float = 2.0) -> np.ndarray:
    """The (super)elliptic radius of every pixel: below 1 inside, 1 on the outline."""
    dx, dy = (grid.x - np.float32(cx)) / np.float32(a), (grid.y - np.float32(cy)) / np.float32(b)
    if power == 2.0:
        return np.sqrt(dx * dx + dy * dy)
    return (np.abs(dx) ** power + np.abs(dy) ** power) ** (1.0 / power)


def _lung_centre(side: int, patient: Patient) -> tuple[float, float]:
    return side * 0.40 * patient.body_width / 0.85, -0.02


def _lung_scale(z: float) -> float:
    """How large the lungs are at level z: small at the apex, widest near the bases."""
    return 0.35 + 0.65 * _smoothstep(z, 0.0, 0.6)


def _unit(vector: np.ndarray) -> np.ndarray:
    # np.linalg.norm's own arithmetic (the square root of the dot product) without its checks: a tree is
    # hundreds of thousands of calls, and the data must stay the same to the bit
    return vector / math.sqrt(vector.dot(vector))


_STEP_SCALE = np.array([1.0, 1.0, 1.0 / Z_SCALE])


def _grow_branch(rng, start, direction, radius, generation, airway, segments) -> None:
    """A vessel runs a few short, slightly curving segments, then splits into two thinner ones."""
    point = start
    for _ in range(int(rng.integers(2, 5))):
        direction = _unit(direction + rng.normal(scale=0.25, size=3))
        step = direction * rng.uniform(0.03, 0.05) * _STEP_SCALE
        end = point + step
        segments.append((point, end, radius, airway))
        point = end
        radius *= 0.93
    if generation < 4:
        for _ in range(2):
            child = _unit(direction + rng.normal(scale=0.6, size=3))
            # Only the larger bronchi are visible on CT; small airways stop being drawn.
            _grow_branch(rng, point, child, radius * 0.72, generation + 1, airway and generation < 1, segments)


def _vascular_tree(rng: np.random.Generator) -> VascularTree:
    segments: list = []
    for side in (-1, 1):
        for _ in range(24):
            hilum = np.array([side * 0.17, rng.uniform(-0.08, 0.04), rng.uniform(0.3, 0.65)])
            outward = np.array([side * 1.0, 0.1, 0.0])
            direction = _unit(rng.normal(size=3) * np.array([0.7, 1.0, 2.5]) + outward)
            airway = bool(rng.random() < 0.3)
            _grow_branch(rng, hilum, direction, rng.uniform(0.009, 0.013), 0, airway, segments)
    starts, ends, radii, airway = zip(*segments, strict=True)
    return VascularTree(np.array(starts), np.array(ends), np.array(radii), np.array(airway))


def _random_lesions(rng: np.random.Generator) -> tuple[Lesion, ...]:
    lesions = []
    # About one patient in six is free of ground-glass and consolidation, as in a COVID-19 cohort.
    counts = {
        1: rng.choice([0, 1, 2, 3, 4, 5], p=[0.15, 0.2, 0.25, 0.2, 0.1, 0.1]),
        2: rng.choice([0, 1, 2, 3]),
    }
    for label, count in counts.items():
        for _ in range(int(count)):
            side = rng.choice([-1, 1])
            # Peripheral and posterior, where COVID-19 lesions are typical.
            x = side * rng.uniform(0.35, 0.7)
            y = rng.uniform(-0.25, 0.4)
            z = rng.uniform(0.25, 0.95)
            size = rng.uniform(0.08, 0.25) if label == 1 else rng.uniform(0.06, 0.15)
            radii = (size * rng.uniform(0.7, 1.3), size * rng.uniform(0.7, 1.3), size * rng.uniform(0.6, 1.2))
            contrast = rng.uniform(280, 420) if label == 1 else rng.uniform(15, 45)
            shape = SmoothField.random(rng, frequency=rng.uniform(25, 40))
            lesions.append(Lesion(label, (x, y, z), radii, contrast, shape))
    return tuple(lesions)


def random_patient(rng: np.random.Generator) -> Patient:
    effusion = tuple(float(rng.uniform(0.05, 0.2)) if rng.random() < 0.3 else 0.0 for _ in range(2))
    return Patient(
        body_width=rng.uniform(0.78, 0.88),
        body_depth=rng.uniform(0.55, 0.64),
        fat=rng.uniform(0.04, 0.1),
        lung_width=rng.uniform(0.27, 0.31),
        lung_height=rng.uniform(0.40, 0.46),
        heart=rng.uniform(0.9, 1.1),
        effusion=(effusion[0], effusion[1]),
        lesions=_random_lesions(rng),
        tree=_vascular_tree(rng),
        outline=SmoothField.random(rng, frequency=4.0),
        rib_phase=rng.uniform(0, 2 * np.pi),
    )


def _draw_capsules(
    shape: tuple[int, int], segments: list[tuple[np.ndarray, np.ndarray, float]], size: int
) -> np.ndarray:
    """Coverage in [0, 1] of in-plane capsules (start, end, radius) given in normalised coordinates."""
    coverage = np.zeros(shape, dtype=np.float32)
    pixel = 2.0 / size
    for start, end, radius in segments:
        r_px = max(radius / pixel, 0.6)
        p0 = (np.asarray(start) + 1) / pixel - 0.5
        p1 = (np.asarray(end) + 1) / pixel - 0.5
        low = np.floor(np.minimum(p0, p1) - r_px - 2).astype(int)
        high = np.ceil(np.maximum(p0, p1) + r_px + 2).astype(int)
        x0, y0 = max(low[0], 0), max(low[1], 0)
        x1, y1 = min(high[0], shape[1]), min(high[1], shape[0])
        if x0 >= x1 or y0 >= y1:
            continue
        cols, rows = np.arange(x0, x1)[None, :], np.arange(y0, y1)[:, None]  # broadcast: no meshgrid's copies
        direction = p1 - p0
        length2 = float(direction @ direction) or 1e-9
        t = np.clip(((cols - p0[0]) * direction[0] + (rows - p0[1]) * direction[1]) / length2, 0, 1)
        distance = np.hypot(cols - (p0[0] + t * direction[0]), rows - (p0[1] + t * direction[1]))
        value = np.clip(r_px + 0.5 - distance, 0, 1)
        coverage[y0:y1, x0:x1] = np.maximum(coverage[y0:y1, x0:x1], value)
    return coverage


def _slab_segments(tree: VascularTree, z: float, airway: bool, scale: float = 1.0):
    """The parts of the tree inside this slice's slab, projected into the plane."""
    half = 0.01  # half the slice thickness, in z units
    chosen = tree.airway == airway
    starts, ends, radii = tree.starts[chosen], tree.ends[chosen], tree.radii[chosen]
    dz = ends[:, 2] - starts[:, 2]
    flat = np.abs(dz) < 1e-9
    safe = np.where(flat, 1.0, dz)
    t_a, t_b = (z - half - starts[:, 2]) / safe, (z + half - starts[:, 2]) / safe
    t0 = np.where(flat, 0.0, np.maximum(np.minimum(t_a, t_b), 0.0))
    t1 = np.where(flat, 1.0, np.minimum(np.maximum(t_a, t_b), 1.0))
    keep = (t0 <= t1) & ~(flat & (np.abs(z - starts[:, 2]) > half))
    delta = ends[keep, :2] - starts[keep, :2]
    first = starts[keep, :2] + delta * t0[keep, None]
    last = starts[keep, :2] + delta * t1[keep, None]
    return list(zip(first, last, radii[keep] * scale, strict=True))


@dataclass
class _Slice:
    """The slice being painted at level z: HU values, the two label maps, and shared geometry."""

    grid: Grid
    z: float
    patient: Patient
    rng: np.random.Generator
    outline: np.ndarray  # the patient's smooth wobble at this level, shared by body and lung outlines
    hu: np.ndarray
    lung: np.ndarray
    lesion: np.ndarray
    body_r: np.ndarray | None = None  # the body's elliptic radius, set by _body

    def paint(self, region: np.ndarray, value) -> None:
        self.hu[region] = value if np.isscalar(value) else value[region]

    @property
    def body_width(self) -> float:
        return self.patient.body_width * (0.9 + 0.1 * _smoothstep(self.z, 0.0, 0.5))

    @property
    def chest_wall(self) -> float:
        """The body radius at which muscle begins under the subcutaneous fat."""
        return 1.0 - self.patient.fat

    @property
    def spine_y(self) -> float:
        return 0.04 + self.patient.body_depth * 0.62


def _body(s: _Slice) -> None:
    depth = s.patient.body_depth
    s.body_r = _ellipse(s.grid, 0.0, 0.04, s.body_width, depth, power=BODY_POWER) + 0.015 * s.outline
    s.paint(s.body_r < 1.0, HU_FAT)
    s.paint(s.body_r < s.chest_wall, HU_MUSCLE)
    s.paint(s.body_r < s.chest_wall * 0.93, HU_SOFT)
    x, y = s.grid.x, s.grid.y
    table = (np.abs(y - (0.04 + depth + 0.09 + 0.05 * x**2)) < 0.012) & (np.abs(x) < 0.9)
    s.paint(table, 150.0)  # the scanner table under the patient's back


def _bone(s: _Slice, radius: np.ndarray, marrow: float = 0.6) -> None:
    s.paint(radius < 1.0, HU_BONE_CORTEX)
    s.paint(radius < marrow, HU_BONE_MARROW)


def _skeleton(s: _Slice) -> None:
    width, depth, spine_y, z = s.body_width, s.patient.body_depth, s.spine_y, s.z
    _bone(s, _ellipse(s.grid, 0.0, spine_y, 0.095, 0.095), marrow=0.84)  # vertebral body
    canal = _ellipse(s.grid, 0.0, spine_y + 0.14, 0.045, 0.045)
    s.paint((canal < 1.55) & (canal >= 1.0) & (s.grid.y > spine_y + 0.1), HU_BONE_CORTEX)  # neural arch
    s.paint(canal < 1.0, 20.0)
    s.paint(_ellipse(s.grid, 0.0, spine_y + 0.23, 0.022, 0.05) < 1, HU_BONE_CORTEX)  # spinous process
    if 0.15 < z < 0.85:
        _bone(s, _ellipse(s.grid, 0.0, 0.04 - depth * 0.86, 0.06, 0.025))  # sternum
    # Ribs: cross-sections along the inside of the chest wall; their course is oblique, so they move with z.
    ring = s.chest_wall * 0.9
    for side in (-1, 1):
        for k, degrees in enumerate((-62, -38, -14, 10, 34, 58, 74)):
            angle = np.radians(degrees) + 0.12 * np.sin(s.patient.rib_phase + 9 * z + k)
            c, t = np.cos(angle), np.sin(angle)
            # A point on the superelliptic body outline at this angle, pulled inside the chest wall.
            cx = side * ring * width * abs(c) ** (2 / BODY_POWER)
            cy = 0.04 + ring * depth * np.sign(t) * abs(t) ** (2 / BODY_POWER)
            _bone(s, _ellipse(s.grid, cx, cy, 0.035, 0.02))
        if z < 0.55:  # scapulae behind the upper ribs
            _bone(s, _ellipse(s.grid, side * width * 0.62, 0.04 + depth * 0.78, 0.16, 0.018), marrow=0.5)


def _mediastinum(s: _Slice) -> np.ndarray | None:
    """Great vessels and the heart; returns the heart's elliptic radius (None above the heart)."""
    z = s.z
    if z > 0.25:  # descending aorta, left of the spine
        s.paint(_ellipse(s.grid, 0.1, s.spine_y - 0.15, 0.06, 0.06) < 1, HU_BLOOD)
    if 0.3 < z < 0.55:  # ascending aorta and pulmonary trunk
        s.paint(_ellipse(s.grid, -0.05, -0.12, 0.07, 0.07) < 1, HU_BLOOD)
        s.paint(_ellipse(s.grid, 0.1, -0.15, 0.065, 0.065) < 1, HU_BLOOD)
    heart_size = s.patient.heart * np.sin(np.pi * _smoothstep(z, 0.45, 1.05))
    if heart_size <= 0.05:
        return None
    heart = _ellipse(s.grid, 0.07, -0.12, 0.27 * heart_size, 0.24 * heart_size)
    s.paint((heart < 1.0) & (heart > 0.92), HU_FAT)  # epicardial fat
    s.paint(heart < 0.92, 40.0)
    return heart


def _central_airways(s: _Slice) -> None:
    trachea_y = s.spine_y - 0.27
    if s.z < 0.38:
        s.paint(_ellipse(s.grid, 0.0, trachea_y, 0.06, 0.06) < 1, 60.0)
        s.paint(_ellipse(s.grid, 0.0, trachea_y, 0.05, 0.05) < 1, HU_AIR)
    elif s.z < 0.5:  # main bronchi diverging below the carina
        spread = 0.06 + (s.z - 0.38) * 1.4
        for side in (-1, 1):
            s.paint(_ellipse(s.grid, side * spread, trachea_y, 0.04, 0.04) < 1, 60.0)
            s.paint(_ellipse(s.grid, side * spread, trachea_y, 0.031, 0.031) < 1, HU_AIR)


def _lungs(s: _Slice, heart: np.ndarray | None) -> None:
    """Both pleural cavities: aerated lung (labelled 1 and 2) and, at the bases, effusion (lesion label 3)."""
    scale, x, y, z = _lung_scale(s.z), s.grid.x, s.grid.y, s.z
    for label, side in ((1, -1), (2, 1)):
        cx, cy = _lung_centre(side, s.patient)
        a, b = s.patient.lung_width * scale**0.5, s.patient.lung_height * scale
        cavity = _ellipse(s.grid, cx, cy + 0.06 * (1 - scale), a, b, power=2.3) + 0.02 * s.outline < 1.0
        cavity &= s.body_r < s.chest_wall * 0.84  # inside the ribs
        # The mediastinum; behind the heart the lungs reach round towards the spine.
        cavity &= np.abs(x) > 0.13 + 0.02 * (1 - scale) - 0.05 * np.clip(y / b, 0, 1)
        cavity &= np.hypot(x, y - s.spine_y) > 0.15
        if heart is not None:
            cavity &= heart > 1.05
        if z > 0.72:  # the diaphragm dome rises into the base, higher on the right (liver)
            dome = (z - 0.72) / 0.28 * (1.25 if side < 0 else 1.0)
            diaphragm = _ellipse(s.grid, cx + side * 0.02, cy - 0.12, a * 0.95 * dome, b * 0.9 * dome) < 1.0
            s.paint(diaphragm & cavity, HU_LIVER if side < 0 else HU_SOFT)
            cavity &= ~diaphragm
        depth = s.patient.effusion[0 if side < 0 else 1] * _smoothstep(z, 0.55, 0.95)
        effusion = np.zeros_like(cavity)
        if depth > 0.01:  # fluid settles in the dependent (posterior) cavity, with a meniscus
            effusion = cavity & (y > cy + b - 2 * b * depth * (1 - 0.4 * ((x - cx) / a) ** 2))
        lung = cavity & ~effusion
        texture = ndimage.gaussian_filter(s.rng.standard_normal(x.shape, dtype=np.float32), 1.2) * 60.0
        gravity = 60.0 * np.clip((y - cy + b) / (2 * b), 0, 1)  # dependent lung is denser
        s.paint(lung, HU_LUNG + gravity + texture)
        s.paint(effusion, HU_FLUID)
        s.lung[lung] = label
        s.lesion[effusion] = 3


def _lesions(s: _Slice) -> None:
    lung = s.lung > 0
    for lesion in s.patient.lesions:
        cx, cy, cz = lesion.center
        rx, ry, rz = lesion.radii
        through = 1.0 - ((s.z - cz) / rz) ** 2
        if through <= 0:
            continue
        shrink = np.sqrt(through)
        r = _ellipse(s.grid, cx, cy, rx * shrink, ry * shrink) + 0.3 * lesion.shape.at(s.grid, s.z)
        inside = (r < 1.0) & lung
        if not inside.any():
            continue
        edge = np.clip((1.0 - r[inside]) * 6.0, 0, 1)  # a soft border
        if lesion.label == 1:  # ground-glass: hazy, the lung beneath still shows
            s.hu[inside] += lesion.contrast * edge
            s.lesion[inside & (s.lesion == 0)] = 1
        else:  # consolidation: the air is replaced by soft tissue
            s.hu[inside] = s.hu[inside] * (1 - edge) + lesion.contrast * edge
            s.lesion[inside] = 2


def _vessels_and_airways(s: _Slice) -> None:
    lungs, shape, size, tree = s.lung > 0, s.hu.shape, s.grid.size, s.patient.tree
    vessels = _draw_capsules(shape, _slab_segments(tree, s.z, airway=False), size)
    region = lungs & (vessels > 0)
    s.hu[region] = s.hu[region] * (1 - vessels[region]) + HU_BLOOD * vessels[region]
    walls = _draw_capsules(shape, _slab_segments(tree, s.z, airway=True, scale=1.3), size)
    lumen = _draw_capsules(shape, _slab_segments(tree, s.z, airway=True, scale=0.8), size)
    s.hu[lungs & (walls > 0.5)] = -150.0
    s.hu[lungs & (lumen > 0.5)] = -980.0


def _scanner(hu: np.ndarray, rng: np.random.Generator, noise_hu: float) -> np.ndarray:
    """A little blur (point spread), then correlated and white noise, stored as int16 HU."""
    pixels_per_mm = hu.shape[0] / FIELD_OF_VIEW_MM
    hu = ndimage.gaussian_filter(hu, sigma=max(0.5, 0.4 * pixels_per_mm))
    correlated = ndimage.gaussian_filter(rng.standard_normal(hu.shape, dtype=np.float32), 0.8) * 1.8
    hu += noise_hu * (0.6 * rng.standard_normal(hu.shape, dtype=np.float32) + correlated)
    return np.clip(np.round(hu), -1024, 3071).astype(np.int16)


def render_slice(
    patient: Patient, z: float, size: int, rng: np.random.Generator, noise_hu: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One axial slice at level z: (HU as int16, lung labels, lesion labels), each (size, size)."""
    grid = Grid.of(size)
    s = _Slice(
        grid=grid,
        z=z,
        patient=patient,
        rng=rng,
        outline=patient.outline.at(grid, z),
        hu=np.full((size, size), HU_AIR, dtype=np.float32),
        lung=np.zeros((size, size), dtype=np.uint8),
        lesion=np.zeros((size, size), dtype=np.uint8),
    )
    _body(s)
    heart = _mediastinum(s)
    _lungs(s, heart)
    _skeleton(s)
    _central_airways(s)
    _lesions(s)
    _vessels_and_airways(s)
    return _scanner(s.hu, rng, noise_hu), s.lung, s.lesion


def _stack(slices: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """(H, W, S) arrays, slices along the last axis as in the real files."""
    return tuple(np.stack(parts, axis=-1) for parts in zip(*slices, strict=True))


def training_set(seed: int, size: int, noise_hu: float):
    """100 slices from 25 patients at random levels, like the MedSeg set (slices from many patients)."""
    slices = []
    per_patient = rawdata.TRAIN_SLICES // TRAIN_PATIENTS
    for p in range(TRAIN_PATIENTS):
        rng = np.random.default_rng([seed, 0, p])
        patient = random_patient(rng)
        levels = np.sort(rng.uniform(0.12, 0.95, size=per_patient))
        slices += [render_slice(patient, float(z), size, rng, noise_hu) for z in levels]
    return _stack(slices)


def test_volume(seed: int, index: int, size: int, slices_min: int, slices_max: int, noise_hu: float):
    """A contiguous volume from apex to base of one patient, like a Radiopaedia case."""
    rng = np.random.default_rng([seed, 1, index])
    patient = random_patient(rng)
    count = int(rng.integers(slices_min, slices_max + 1))
    levels = np.linspace(0.03, 0.97, count)
    return _stack([render_slice(patient, float(z), size, rng, noise_hu) for z in levels])


def _affine(size: int) -> np.ndarray:
    spacing = FIELD_OF_VIEW_MM / size
    return np.diag([spacing, spacing, SLICE_SPACING_MM, 1.0])


def _save(array: np.ndarray, size: int, path: Path) -> None:
    image = nib.Nifti1Image(array, _affine(size))
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def _write_training_set(out_dir: Path, seed: int, size: int, noise_hu: float) -> str:
    image, lung, lesion = training_set(seed, size, noise_hu)
    _save(image, size, out_dir / rawdata.TRAIN_IMAGE)
    _save(lesion, size, out_dir / rawdata.TRAIN_LESION)
    _save(lung, size, out_dir / rawdata.TRAIN_LUNG)
    return rawdata.TRAIN_IMAGE


def _write_test_volume(
    out_dir: Path, seed: int, index: int, size: int, slices_min: int, slices_max: int, noise_hu: float
) -> str:
    image, lung, lesion = test_volume(seed, index, size, slices_min, slices_max, noise_hu)
    name = f"{index}.nii.gz"
    _save(image, size, out_dir / rawdata.TEST_IMAGE_DIR / name)
    _save(lesion, size, out_dir / rawdata.TEST_LESION_DIR / name)
    _save(lung, size, out_dir / rawdata.TEST_LUNG_DIR / name)
    return name


def write_dataset(
    out_dir: Path,
    seed: int,
    train_size: int,
    test_size: int,
    slices_min: int,
    slices_max: int,
    noise_hu: float,
    progress=None,
    workers: int = 1,
) -> None:
    """Write the six files of the study's layout (see pipeline.data.rawdata) into out_dir.

    Every scan has its own random stream, so ``workers`` processes give the same bytes as one.
    """
    out_dir = Path(out_dir)
    for folder in (rawdata.TEST_IMAGE_DIR, rawdata.TEST_LESION_DIR, rawdata.TEST_LUNG_DIR):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    jobs = [(_write_training_set, (out_dir, seed, train_size, noise_hu))]
    jobs += [
        (_write_test_volume, (out_dir, seed, index, test_size, slices_min, slices_max, noise_hu))
        for index in range(1, rawdata.TEST_VOLUMES + 1)
    ]
    if workers <= 1:
        for function, args in jobs:
            function(*args)
            if progress:
                progress.update(1)
        return
    with worker_pool(workers, start="fork") as pool:  # numpy only: forking is safe and quick
        for future in as_completed([pool.submit(function, *args) for function, args in jobs]):
            future.result()
            if progress:
                progress.update(1)
