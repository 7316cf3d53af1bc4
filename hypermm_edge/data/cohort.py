"""`DATA_DIR/labels.csv` (patient,label) + one folder per patient -> labelled patients."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypermm_edge.errors import DatasetError


@dataclass(frozen=True)
class LabelledPatient:
    patient: str
    folder: Path
    label: int


def read_cohort(data_dir: str | Path, labels: tuple[str, ...] | None = None
                ) -> tuple[list[LabelledPatient], tuple[str, ...]]:
    """Rows of labels.csv with their folders. Labels may be names or integer indices.

    When `labels` is None they are taken from the file: sorted names, or 0..K-1 for integers.
    """
    data_dir = Path(data_dir)
    csv_path = data_dir / "labels.csv"
    if not csv_path.is_file():
        raise DatasetError("labels.csv not found (columns: patient,label)", path=csv_path)
    rows: list[tuple[int, str, str]] = []
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"patient", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"header must hold 'patient' and 'label', got {reader.fieldnames}", path=csv_path)
        for line, row in enumerate(reader, start=2):
            patient, label = (row.get("patient") or "").strip(), (row.get("label") or "").strip()
            if not patient or not label:
                raise DatasetError(f"line {line}: empty patient or label", path=csv_path)
            rows.append((line, patient, label))
    if not rows:
        raise DatasetError("no patients listed", path=csv_path)
    seen: set[str] = set()
    for line, patient, _ in rows:
        if patient in seen:
            raise DatasetError(f"line {line}: patient {patient!r} listed twice", path=csv_path)
        seen.add(patient)
    values = [label for _, _, label in rows]
    if labels is None:
        if all(v.isdigit() for v in values):
            labels = tuple(str(i) for i in range(max(int(v) for v in values) + 1))
        else:
            labels = tuple(sorted(set(values)))
    if len(labels) < 2:
        raise DatasetError(f"need at least two classes, found {list(labels)}", path=csv_path)
    index = {name: i for i, name in enumerate(labels)}
    patients = []
    missing = []
    for line, patient, label in rows:
        if label in index:
            y = index[label]
        elif label.isdigit() and int(label) < len(labels):
            y = int(label)
        else:
            raise DatasetError(f"line {line}: label {label!r} is not one of {list(labels)}", path=csv_path)
        folder = data_dir / patient
        if not folder.is_dir():
            missing.append(f"{patient} (line {line})")
        patients.append(LabelledPatient(patient, folder, y))
    if missing:
        raise DatasetError(f"patient folders missing: {', '.join(missing[:10])}", path=data_dir)
    return patients, tuple(labels)


def split_patients(patients: list[LabelledPatient], seed: int, ratios: tuple[int, int, int] = (6, 1, 3)
                   ) -> tuple[list[LabelledPatient], list[LabelledPatient], list[LabelledPatient]]:
    """Patient-level train/val/test split (6:1:3 as the paper), stratified by label."""
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    total = sum(ratios)
    for y in sorted({p.label for p in patients}):
        group = [p for p in patients if p.label == y]
        order = rng.permutation(len(group))
        n_train = round(len(group) * ratios[0] / total)
        n_val = max(1, round(len(group) * ratios[1] / total)) if len(group) >= 3 else 0
        for rank, i in enumerate(order):
            target = 0 if rank < n_train else 1 if rank < n_train + n_val else 2
            parts[target].append(group[i])
    for part in parts:
        part.sort(key=lambda p: p.patient)
    return parts


def discover_modalities(data_dir: str | Path) -> dict[str, str]:
    """Modality name -> kind, from what the patient folders hold (names compared case-insensitively).

    `<NAME>.nii[.gz]` is a volume; a `<NAME>/` folder of png/jpg/tif/bmp is `images`; any other
    folder is taken as a DICOM series (a volume).
    """
    from hypermm_edge.readers import images, nifti

    found: dict[str, tuple[str, str]] = {}
    for folder in sorted(Path(data_dir).iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                has_images = any(p.name.lower().endswith(images.SUFFIXES) for p in entry.iterdir())
                name, kind = entry.name, "images" if has_images else "volume"
            else:
                stem = next((entry.name[: -len(s)] for s in nifti.SUFFIXES if entry.name.lower().endswith(s)), None)
                if stem is None:
                    continue
                name, kind = stem, "volume"
            previous = found.setdefault(name.lower(), (name, kind))
            if previous[1] != kind:
                raise DatasetError(f"modality {name} is a volume in some patients and images in others",
                                   path=entry)
    if not found:
        raise DatasetError("no modality files found in any patient folder", path=data_dir)
    return {name: kind for name, kind in sorted(found.values())}
