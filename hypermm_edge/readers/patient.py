"""A patient folder -> the set of inputs present, preprocessed for the trunk.

Layout: `<MODALITY>.nii[.gz]` volumes, or a `<MODALITY>/` folder holding 2D images (kind
`images`) or a DICOM series (kind `volume`). Names are matched case-insensitively; files that
match nothing are reported, never used; absent modalities are simply absent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hypermm_edge.config import ModalitySpec, ModelConfig
from hypermm_edge.errors import InputError
from hypermm_edge.preprocess import images_to_batch, volume_to_slices
from hypermm_edge.readers import dicom, images, nifti
from hypermm_edge.readers.limits import DEFAULT_LIMITS, ReadLimits


@dataclass
class PatientInput:
    """One modality present: trunk input [B, S, 3, H, W] (a volume: B=1; images: S=1)."""

    modality: ModalitySpec
    source: Path
    slices: np.ndarray


@dataclass
class PatientSet:
    patient: str
    folder: Path
    inputs: list[PatientInput]
    ignored: list[str] = field(default_factory=list)
    read_ms: float = 0.0
    preprocess_ms: float = 0.0

    @property
    def modalities(self) -> list[str]:
        return [x.modality.name for x in self.inputs]


def _strip_suffix(name: str, suffixes: tuple[str, ...]) -> str | None:
    lower = name.lower()
    for s in suffixes:
        if lower.endswith(s):
            return name[: -len(s)]
    return None


def check_inside(path: Path, root: Path) -> None:
    """Refuse symlinks (or anything) that resolve outside the patient folder."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InputError(f"links outside the patient folder (to {resolved})", path=path,
                         category="input.security")


def locate_inputs(folder: Path, config: ModelConfig) -> tuple[dict[str, Path], list[str]]:
    """Modality name -> file or folder, plus the entries that matched no modality."""
    if not folder.is_dir():
        raise InputError("patient folder not found", path=folder, category="input.missing")
    by_name = {m.name.lower(): m for m in config.modalities}
    found: dict[str, Path] = {}
    ignored: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        check_inside(entry, folder)
        if entry.is_dir():
            stem: str | None = entry.name
        else:
            stem = _strip_suffix(entry.name, nifti.SUFFIXES)
        spec = by_name.get(stem.lower()) if stem else None
        if spec is None or (entry.is_file() and spec.kind != "volume"):
            ignored.append(entry.name)
            continue
        if spec.name in found:
            raise InputError(f"modality {spec.name} given twice ({found[spec.name].name} and {entry.name})",
                             path=entry, category="input.ambiguous")
        found[spec.name] = entry
    if not found:
        known = ", ".join(m.name for m in config.modalities)
        raise InputError(f"no known modality in folder (expected {known}); found {ignored or 'nothing'}",
                         path=folder, category="input.missing")
    return found, ignored


def _read_images_folder(folder: Path, root: Path, limits: ReadLimits) -> tuple[list[np.ndarray], list[str]]:
    arrays, ignored = [], []
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if len(entries) > limits.max_images:
        raise InputError(f"{len(entries)} files, above the limit of {limits.max_images}", path=folder,
                         category="input.too_large")
    for p in entries:
        check_inside(p, root)
        if p.is_file() and p.name.lower().endswith(images.SUFFIXES):
            arrays.append(images.read_image(p, limits))
        else:
            ignored.append(f"{folder.name}/{p.name}")
    if not arrays:
        raise InputError("folder holds no image (png, jpg, tif, bmp)", path=folder, category="input.missing")
    return arrays, ignored


def read_patient(folder: str | Path, config: ModelConfig, limits: ReadLimits = DEFAULT_LIMITS,
                 only: set[str] | None = None) -> PatientSet:
    """Read and preprocess every modality present (or only those named in `only`)."""
    folder = Path(folder)
    located, ignored = locate_inputs(folder, config)
    inputs: list[PatientInput] = []
    read_s = prep_s = 0.0
    for name, path in located.items():
        if only is not None and name not in only:
            continue
        spec = config.modality(name)
        t0 = time.perf_counter()
        if spec.kind == "images":
            raw_images, skipped = _read_images_folder(path, folder, limits)
            ignored += skipped
            t1 = time.perf_counter()
            slices = images_to_batch(raw_images, config.preprocess)
        else:
            if path.is_dir():
                volume, skipped = dicom.read_dicom_series(path, limits)
                ignored += [f"{path.name}/{s}" for s in skipped]
            else:
                volume = nifti.read_nifti(path, limits, reorient=config.preprocess.reorient_canonical)
            t1 = time.perf_counter()
            slices = volume_to_slices(volume, config.preprocess, path)[None]
        t2 = time.perf_counter()
        read_s += t1 - t0
        prep_s += t2 - t1
        inputs.append(PatientInput(spec, path, slices))
    return PatientSet(folder.name, folder, inputs, ignored, read_s * 1e3, prep_s * 1e3)
