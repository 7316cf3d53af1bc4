"""Incremental feature cache: phi's output for each input, keyed by what determines it.

The key is the input's content (file bytes, or every file of a folder), the engines' hashes
and the preprocessing, so a changed file, a rebuilt engine or another preprocessing never
hits a stale entry. When a modality is added to a patient later, only that modality's
extractor and rho run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from hypermm_edge.readers.patient import check_inside


class FeatureCache:
    def __init__(self, directory: str | Path, engine_fingerprint: str, preprocess: dict) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        salt = json.dumps({"engines": engine_fingerprint, "preprocess": preprocess}, sort_keys=True)
        self._salt = hashlib.sha256(salt.encode()).hexdigest()

    def key(self, source: Path, patient_folder: Path) -> str:
        h = hashlib.sha256(self._salt.encode())
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for f in files:
            check_inside(f, patient_folder)
            h.update(str(f.relative_to(source.parent)).encode() + b"\0")
            with f.open("rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # a damaged entry is a miss, and is rewritten
            return None

    def put(self, key: str, rows: np.ndarray) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, rows, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
