"""2D images via Pillow: an allow-list of formats, bombs and truncation turned into errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hypermm_edge.errors import InputError
from hypermm_edge.preprocess import scale_to_u8
from hypermm_edge.readers.limits import DEFAULT_LIMITS, ReadLimits

ALLOWED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_image(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> np.ndarray:
    """[H, W] uint8 grey or [H, W, 3] uint8 RGB. 16-bit grey is min-max scaled to 8 bits."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)", path=path, category="input.corrupt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=list(ALLOWED_FORMATS)) as img:
                width, height = img.size
                if width * height > limits.max_image_pixels:
                    raise InputError(f"image is {width}x{height} pixels, above the limit of "
                                     f"{limits.max_image_pixels} (decompression bomb?)", path=path,
                                     category="input.too_large")
                img.load()
                return _to_array(img, path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(f"decompression bomb refused: {exc}", path=path, category="input.too_large") from exc
        except UnidentifiedImageError as exc:
            raise InputError(f"not an image in an allowed format ({', '.join(ALLOWED_FORMATS)})",
                             path=path, category="input.unsupported") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"image unreadable (truncated or corrupt): {exc}", path=path,
                             category="input.corrupt") from exc


def _to_array(img: Image.Image, path: Path) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return scale_to_u8(np.asarray(img), "minmax", path)
    if img.mode in ("1", "L", "LA"):
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))
