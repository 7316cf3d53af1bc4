"""NIfTI volumes via nibabel, with every check made before the voxel data is touched."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hypermm_edge.errors import InputError
from hypermm_edge.readers.limits import DEFAULT_LIMITS, ReadLimits

SUFFIXES = (".nii.gz", ".nii")


def _gzip_isize(path: Path) -> int | None:
    """Uncompressed size mod 2**32 from the gzip trailer, or None if not a gzip file."""
    with path.open("rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return None
        f.seek(-4, 2)
        return struct.unpack("<I", f.read(4))[0]


def read_nifti(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS, reorient: bool = True) -> np.ndarray:
    """A 3D float32 array (scaling applied), reoriented to the closest canonical (RAS) axes."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise InputError("empty file (0 bytes)", path=path, category="input.corrupt")
    gz = path.name.lower().endswith(".gz")
    if gz and _gzip_isize(path) is None:
        raise InputError("named .gz but is not gzip-compressed", path=path, category="input.corrupt")
    try:
        img: Any = nib.load(str(path))
    except (ImageFileError, OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise InputError(f"not a readable NIfTI file: {exc}", path=path, category="input.corrupt") from exc
    header = img.header
    shape = tuple(int(d) for d in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    elif len(shape) != 3:
        raise InputError(f"expected a 3D volume (or 4D with one volume), got shape {img.shape}",
                         path=path, category="input.unsupported")
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels == 0:
        raise InputError(f"volume has no voxels (shape {shape})", path=path, category="input.corrupt")
    if voxels > limits.max_voxels:
        raise InputError(f"header declares {shape} = {voxels} voxels, above the limit of {limits.max_voxels}",
                         path=path, category="input.too_large")
    itemsize = np.dtype(header.get_data_dtype()).itemsize
    needed = int(header.get_data_offset()) + voxels * itemsize
    stored = _gzip_isize(path) if gz else size
    if stored is not None and needed < 2**32 and stored < needed:
        raise InputError(f"header declares {needed} bytes of data but the file holds {stored}",
                         path=path, category="input.corrupt")
    if reorient:
        img = nib.as_closest_canonical(img)
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise InputError(f"voxel data unreadable (truncated or corrupt): {exc}", path=path,
                         category="input.corrupt") from exc
    data = data.reshape(data.shape[:3])
    if not np.isfinite(data).all():
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise InputError(f"{bad} voxels are NaN or infinite", path=path, category="input.invalid_values")
    return data
