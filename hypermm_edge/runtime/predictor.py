"""Run a patient's set through the engines: trunk per input present (in bounded chunks), that
modality's head, aggregation in numpy between engine calls, then rho.

Engines open lazily, so a patient with only MRI never loads the PET head; each file's SHA-256
is checked against the manifest before it is opened.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hypermm_edge.config import ModelConfig
from hypermm_edge.engines.base import Backend, Engine, get_backend
from hypermm_edge.errors import EngineError
from hypermm_edge.manifest import Manifest, verify_file
from hypermm_edge.readers.patient import PatientInput, PatientSet


@dataclass
class Prediction:
    probabilities: np.ndarray  # [C]; binary: [P(negative), P(positive)]
    logits: np.ndarray
    label: str
    modalities: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self, labels: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"prediction": self.label, "modalities": self.modalities}
        if len(labels) == 2:
            out["probability"] = float(self.probabilities[1])
        else:
            out["probabilities"] = {name: float(p) for name, p in zip(labels, self.probabilities, strict=True)}
        return out


def logits_to_probabilities(logits: np.ndarray) -> np.ndarray:
    """[C] logits -> [C] probabilities; a single logit is the positive class's (sigmoid)."""
    logits = logits.astype(np.float64)
    if logits.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits[0]))
        return np.array([1.0 - p, p])
    e = np.exp(logits - logits.max())
    return e / e.sum()


def aggregate(rows: np.ndarray, how: str) -> np.ndarray:
    """[E, D] -> [1, D]; the set operation happens here, between engine calls."""
    if how == "mean":
        return rows.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    if how == "sum":
        return rows.sum(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    if how == "max":
        return rows.max(axis=0, keepdims=True)
    raise EngineError(f"unknown aggregation {how!r}")


class Predictor:
    def __init__(self, engine_dir: str | Path, backend: Backend | None = None, verify_hashes: bool = True,
                 **backend_options: Any) -> None:
        self.engine_dir = Path(engine_dir)
        self.manifest = Manifest.load(self.engine_dir)
        self.config: ModelConfig = self.manifest.config
        options = {**self.manifest.backend_options, **backend_options}
        self.backend = backend or get_backend(self.manifest.backend, **options)
        self.verify_hashes = verify_hashes
        self._engines: dict[str, Engine] = {}
        self.engine_sha256 = self.manifest.fingerprint()

    # ---- engines -------------------------------------------------------------------------
    def engine(self, key: str) -> Engine:
        if key not in self._engines:
            part = self.manifest.parts.get(key)
            if part is None:
                raise EngineError(f"the manifest has no engine {key!r}", path=self.engine_dir)
            path = (verify_file(self.engine_dir, part.file, part.sha256) if self.verify_hashes
                    else self.engine_dir / part.file)
            self._engines[key] = self.backend.load(path, self.manifest.device)
        return self._engines[key]

    @property
    def providers(self) -> list[str]:
        """Providers of the engines opened so far (what really ran)."""
        seen: list[str] = []
        for e in self._engines.values():
            seen += [p for p in e.providers if p not in seen]
        return seen

    @property
    def device_memory_bytes(self) -> int | None:
        """GPU memory held by the engines opened so far; None when they run on the CPU."""
        sizes = [e.device_memory_bytes for e in self._engines.values()]
        known = [s for s in sizes if s is not None]
        return sum(known) if known else None

    # ---- stages --------------------------------------------------------------------------
    def trunk_features(self, slices: np.ndarray) -> np.ndarray:
        """[B, S, 3, H, W] -> [B, 512, h, w], in chunks the profile allows.

        Max over slices is associative, so chunking over S is exact; chunks over B are
        independent rows. Memory stays bounded whatever the slice count.
        """
        trunk = self.engine("trunk")
        p = self.manifest.profile
        rows = []
        for b0 in range(0, slices.shape[0], p.max_batch):
            block = slices[b0 : b0 + p.max_batch]
            pooled = trunk.run(np.ascontiguousarray(block[:, : p.max_slices]))
            for s0 in range(p.max_slices, block.shape[1], p.max_slices):
                np.maximum(pooled, trunk.run(np.ascontiguousarray(block[:, s0 : s0 + p.max_slices])), out=pooled)
            rows.append(pooled)
        return np.concatenate(rows) if len(rows) > 1 else rows[0]

    def head(self, modality: str, features: np.ndarray) -> np.ndarray:
        head = self.engine(Manifest.head_key(modality))
        step = self.manifest.profile.max_batch
        return np.concatenate([head.run(features[i : i + step]) for i in range(0, len(features), step)])

    def extract(self, x: PatientInput, timings: dict[str, float] | None = None) -> np.ndarray:
        """phi for one input present: [B, D] (one row per element of the set)."""
        t0 = time.perf_counter()
        feats = self.trunk_features(x.slices)
        t1 = time.perf_counter()
        rows = self.head(x.modality.name, feats)
        t2 = time.perf_counter()
        if timings is not None:
            timings["trunk"] += (t1 - t0) * 1e3
            timings["head"] += (t2 - t1) * 1e3
        return rows

    def classify(self, rows: np.ndarray, timings: dict[str, float] | None = None) -> np.ndarray:
        """[E, D] elements -> aggregate -> rho -> logits [C]."""
        t0 = time.perf_counter()
        agg = aggregate(rows, self.config.aggregation)
        t1 = time.perf_counter()
        logits = self.engine("rho").run(agg)[0]
        t2 = time.perf_counter()
        if timings is not None:
            timings["aggregate"] += (t1 - t0) * 1e3
            timings["rho"] += (t2 - t1) * 1e3
        return logits

    def predict_rows(self, rows_by_modality: dict[str, np.ndarray], timings: dict[str, float] | None = None
                     ) -> Prediction:
        if not rows_by_modality:
            raise EngineError("a patient needs at least one input present")
        rows = np.concatenate(list(rows_by_modality.values()))
        logits = self.classify(rows, timings)
        probs = logits_to_probabilities(logits)
        return Prediction(probs, logits, self.config.labels[int(np.argmax(probs))], list(rows_by_modality),
                          dict(timings or {}))

    def predict(self, patient: PatientSet) -> Prediction:
        timings: dict[str, float] = defaultdict(float)
        timings["read"] = patient.read_ms
        timings["preprocess"] = patient.preprocess_ms
        t0 = time.perf_counter()
        rows = {x.modality.name: self.extract(x, timings) for x in patient.inputs}
        pred = self.predict_rows(rows, timings)
        pred.timings_ms["total"] = patient.read_ms + patient.preprocess_ms + (time.perf_counter() - t0) * 1e3
        return pred
