"""DICOM series folders via pydicom (extra `dicom`). Files are never read with force=True."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hypermm_edge.errors import InputError
from hypermm_edge.readers.limits import DEFAULT_LIMITS, ReadLimits

log = logging.getLogger(__name__)


def dicom_available() -> tuple[bool, str]:
    try:
        import pydicom  # noqa: F401
    except ImportError:
        return False, "pydicom is not installed (pip install 'hypermm-edge[dicom]')"
    return True, ""


def _slice_position(ds: object) -> float:
    """Position along the slice normal; InstanceNumber when the geometry tags are absent."""
    pos = getattr(ds, "ImagePositionPatient", None)
    orient = getattr(ds, "ImageOrientationPatient", None)
    if pos is not None and orient is not None:
        row, col = np.asarray(orient[:3], float), np.asarray(orient[3:], float)
        return float(np.dot(np.cross(row, col), np.asarray(pos, float)))
    return float(getattr(ds, "InstanceNumber", 0))


def read_dicom_series(folder: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, list[str]]:
    """A folder of one series -> ([rows, cols, slices] float32, names of skipped non-DICOM files)."""
    ok, reason = dicom_available()
    folder = Path(folder)
    if not ok:
        raise InputError(f"DICOM folder cannot be read: {reason}", path=folder, category="input.unsupported")
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) > limits.max_dicom_files:
        raise InputError(f"{len(files)} files, above the limit of {limits.max_dicom_files}", path=folder,
                         category="input.too_large")
    slices, skipped = [], []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except (InvalidDicomError, EOFError, OSError) as exc:
            log.warning("skipping non-DICOM file %s: %s", f, exc)
            skipped.append(f.name)
            continue
        if "PixelData" not in ds:
            skipped.append(f.name)
            continue
        rows, cols = int(ds.Rows), int(ds.Columns)
        if rows * cols * (len(files)) > limits.max_voxels:
            raise InputError(f"series of {rows}x{cols}x{len(files)} is above the voxel limit", path=f,
                             category="input.too_large")
        try:
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # pydicom raises many types for undecodable pixel data
            raise InputError(f"pixel data unreadable: {exc}", path=f, category="input.corrupt") from exc
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        slices.append((_slice_position(ds), pixels * np.float32(slope) + np.float32(intercept), f))
    if not slices:
        raise InputError("no DICOM image in folder", path=folder, category="input.missing")
    shapes = {s[1].shape for s in slices}
    if len(shapes) != 1:
        raise InputError(f"slices of different sizes in one series: {sorted(shapes)}", path=folder,
                         category="input.unsupported")
    slices.sort(key=lambda s: s[0])
    volume = np.stack([s[1] for s in slices], axis=-1)
    if not np.isfinite(volume).all():
        raise InputError("NaN or infinite values after rescale", path=folder, category="input.invalid_values")
    return volume, skipped
