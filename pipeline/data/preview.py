"""A picture of CT slices with their mask outlines, so anyone can check the data by eye.

    python -m pipeline.data.preview                       # a full-size phantom -> site/img/phantom-slices.png
    python -m pipeline.data.preview --raw data/raw        # any data in the study's layout (phantom or real)

Each column is one slice: on top in a lung window (W1500/L-600), below in a soft-tissue window (W400/L40).
Outlines: lungs red, ground-glass yellow, consolidation orange, effusion cyan.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core.errors import ArgumentParser, run_stage
from pipeline.data import phantom, rawdata

LUNG_WINDOW = (-600.0, 1500.0)
SOFT_TISSUE_WINDOW = (40.0, 400.0)
OUTLINE_COLOURS = {
    ("lung", 1): (230, 40, 40),
    ("lung", 2): (230, 40, 40),
    ("lesion", 1): (250, 230, 40),
    ("lesion", 2): (255, 140, 0),
    ("lesion", 3): (40, 220, 255),
}


def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Hounsfield units to grey levels 0-255 for display."""
    low = level - width / 2
    return (np.clip((hu - low) / width, 0, 1) * 255).astype(np.uint8)


def outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of a binary mask that touch the background (4-neighbourhood)."""
    padded = np.pad(mask, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def render_column(hu: np.ndarray, lung: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    """One slice in both windows, outlines drawn on each: an RGB array (2H, W, 3)."""
    panels = []
    for level, width in (LUNG_WINDOW, SOFT_TISSUE_WINDOW):
        grey = window(hu, level, width)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        for (kind, label), colour in OUTLINE_COLOURS.items():
            labels = lung if kind == "lung" else lesion
            rgb[outline(labels == label)] = colour
        panels.append(rgb)
    return np.concatenate(panels, axis=0)


def pick_slices(scan: rawdata.Scan, count: int) -> list[int]:
    """Evenly spaced slices, preferring ones that show lesions."""
    with_lesions = np.flatnonzero(scan.lesion.reshape(-1, scan.slices).any(axis=0))
    pool = with_lesions if len(with_lesions) >= count else np.arange(scan.slices)
    return [int(pool[i]) for i in np.linspace(0, len(pool) - 1, count).round().astype(int)]


def render_preview(raw_dir: Path, columns: int = 5, tile: int = 384) -> Image.Image:
    """Slices of the first test volume (apex to base) next to training slices, at a common height."""
    test = next(rawdata.iter_test_scans(raw_dir))
    train = rawdata.load_train(raw_dir)
    tiles = []
    levels = np.linspace(0.1, 0.9, columns - 2)
    for index in (levels * (test.slices - 1)).round().astype(int):
        tiles.append(render_column(test.image[..., index], test.lung[..., index], test.lesion[..., index]))
    for index in pick_slices(train, 2):
        tiles.append(render_column(train.image[..., index], train.lung[..., index], train.lesion[..., index]))
    # Every column at one size, whatever the scans' sizes: tile x tile per window.
    resized = [Image.fromarray(column).resize((tile, 2 * tile), Image.Resampling.LANCZOS) for column in tiles]
    return Image.fromarray(np.concatenate([np.asarray(column) for column in resized], axis=1))


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, help="data in the study's layout (default: a fresh full-size phantom)")
    parser.add_argument("--out", type=Path, default=Path("site/img/phantom-slices.png"))
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    if args.raw is not None:
        image = render_preview(args.raw)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            phantom.write_dataset(
                Path(scratch), args.seed, 512, 630, 30, 30, noise_hu=20.0, workers=os.cpu_count() or 1
            )
            image = render_preview(Path(scratch))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({image.width}x{image.height})")


if __name__ == "__main__":
    run_stage(main)
