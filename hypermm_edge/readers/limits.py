"""Limits applied before any pixel data is read, so a hostile header cannot exhaust memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadLimits:
    max_voxels: int = 512 * 512 * 2048  # one volume; ~2 GiB as float32
    max_image_pixels: int = 89_478_485  # Pillow's own default decompression-bomb threshold
    max_images: int = 4096  # per images modality
    max_dicom_files: int = 4096


DEFAULT_LIMITS = ReadLimits()
