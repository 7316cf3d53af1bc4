"""Pooled trunk features of every input, computed once.

The trunk is frozen, so [512, h, w] after the slice max-pool is a fixed function of the
input: caching it turns every epoch after the first into small matrix work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from hypermm_edge.config import ModelConfig
from hypermm_edge.data.cohort import LabelledPatient
from hypermm_edge.model.hypermm import Phi
from hypermm_edge.readers.patient import read_patient


@dataclass
class PatientFeatures:
    """A patient's elements: pooled features [E, 512, h, w] and modality ids [E]."""

    patient: str
    label: int
    modality_ids: torch.Tensor
    source: Callable[[], torch.Tensor]

    def features(self) -> torch.Tensor:
        return self.source()


@torch.no_grad()
def _pool(phi: Phi, slices: list[tuple[int, torch.Tensor]], chunk: int) -> torch.Tensor:
    rows = []
    for _, x in slices:
        b, s = x.shape[:2]
        parts = [phi.pooled_features(x[:, i : i + chunk]) for i in range(0, s, chunk)]
        rows.append(torch.stack(parts).amax(dim=0) if len(parts) > 1 else parts[0])
    return torch.cat(rows)


def _cached(pooled: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: pooled


def _recompute(phi: Phi, slices: list[tuple[int, torch.Tensor]], chunk: int) -> Callable[[], torch.Tensor]:
    return lambda: _pool(phi, slices, chunk)


def load_patient_features(phi: Phi, patients: list[LabelledPatient], config: ModelConfig, cache: bool,
                          chunk: int = 64, on_patient: Callable[[], None] | None = None) -> list[PatientFeatures]:
    """Read every patient once. With `cache`, run the trunk now and keep only its output;
    without, keep the preprocessed slices and run the trunk at every access (the baseline)."""
    out = []
    for p in patients:
        ps = read_patient(p.folder, config)
        slices = [(x.modality.id, torch.from_numpy(x.slices)) for x in ps.inputs]
        ids = torch.cat([torch.full((t.shape[0],), mid, dtype=torch.long) for mid, t in slices])
        source = _cached(_pool(phi, slices, chunk)) if cache else _recompute(phi, slices, chunk)
        out.append(PatientFeatures(p.patient, p.label, ids, source))
        if on_patient:
            on_patient()
    return out
