"""A deterministic synthetic two-class cohort, so the whole pipeline runs without private data.

MRI-like volumes: positive patients have larger ventricles and a thinner cortex. PET-like
volumes: positive patients have reduced uptake in a posterior region. Optional histology-like
image sets at four magnifications: positive patients have denser, larger nuclei. Anatomy,
intensities and noise vary per patient; modalities go missing at random (never all).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

MAGNIFICATIONS = (40, 100, 200, 400)


@dataclass(frozen=True)
class SynthSpec:
    patients: int = 40
    size: int = 32
    missing_rate: float = 0.2
    seed: int = 0
    histology: bool = False


def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ax = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return np.meshgrid(ax, ax, ax, indexing="ij")


def _mri(rng: np.random.Generator, size: int, positive: bool) -> np.ndarray:
    x, y, z = _grid(size)
    radii = np.array([0.8, 0.9, 0.75]) * rng.uniform(0.92, 1.08, 3)
    r = np.sqrt((x / radii[0]) ** 2 + (y / radii[1]) ** 2 + (z / radii[2]) ** 2)
    cortex = rng.uniform(0.10, 0.14) * (0.4 if positive else 1.0)
    vent = rng.uniform(0.16, 0.22) * (2.3 if positive else 1.0)
    rv = np.sqrt((x / (vent * 0.6)) ** 2 + (y / vent) ** 2 + (z / (vent * 0.8)) ** 2)
    vol = np.zeros_like(x)
    vol[r < 1.0] = 0.55  # grey matter
    vol[r < 1.0 - cortex] = 0.85  # white matter
    vol[rv < 1.0] = 0.12  # ventricles (CSF)
    vol += rng.normal(0.0, 0.04, vol.shape).astype(np.float32)
    return (vol * rng.uniform(600, 1400)).astype(np.float32)


def _pet(rng: np.random.Generator, size: int, positive: bool) -> np.ndarray:
    x, y, z = _grid(size)
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.75) ** 2)
    uptake = np.where(r < 1.0, 1.0 - 0.4 * r, 0.0).astype(np.float32)
    if positive:
        region = np.exp(-(((y + 0.45) / 0.35) ** 2 + (x / 0.5) ** 2 + ((z - 0.2) / 0.4) ** 2))
        uptake *= 1.0 - 0.8 * region.astype(np.float32)
    uptake += rng.normal(0.0, 0.05, uptake.shape).astype(np.float32)
    return np.clip(uptake, 0, None) * np.float32(rng.uniform(5, 15))


def _histology(rng: np.random.Generator, size: int, positive: bool, magnification: int) -> np.ndarray:
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = (0.93, 0.75, 0.85)  # eosin-pink background
    yy, xx = np.mgrid[0:size, 0:size]
    count = int((40 if positive else 15) * 100 / magnification) + 3
    radius = size / 40 * magnification / 100 * (1.5 if positive else 1.0) + 1
    for _ in range(count):
        cy, cx = rng.uniform(0, size, 2)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        img[mask] = (0.35, 0.25, 0.6)  # haematoxylin-purple nuclei
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_synthetic_cohort(out_dir: str | Path, spec: SynthSpec) -> Path:
    """Write `labels.csv` and patient folders; the same spec always gives the same files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    modalities = ["MRI", "PET"] + (["HISTO"] if spec.histology else [])
    rows = []
    for i in range(spec.patients):
        name = f"patient_{i:03d}"
        positive = bool(i % 2)  # balanced classes
        folder = out / name
        folder.mkdir(exist_ok=True)
        present = [m for m in modalities if rng.uniform() >= spec.missing_rate]
        if not present:
            present = [modalities[int(rng.integers(len(modalities)))]]
        affine = np.diag([1.0, 1.0, 1.0, 1.0])
        if "MRI" in present:
            nib.save(nib.Nifti1Image(_mri(rng, spec.size, positive), affine), str(folder / "MRI.nii.gz"))
        if "PET" in present:
            nib.save(nib.Nifti1Image(_pet(rng, spec.size, positive), affine), str(folder / "PET.nii.gz"))
        if "HISTO" in present:
            (folder / "HISTO").mkdir(exist_ok=True)
            for mag in MAGNIFICATIONS:
                Image.fromarray(_histology(rng, spec.size, positive, mag)).save(folder / "HISTO" / f"{mag}x.png")
        rows.append((name, "AD" if positive else "CN"))
    with (out / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["patient", "label"])
        writer.writerows(rows)
    return out
