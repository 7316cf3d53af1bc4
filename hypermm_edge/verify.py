"""PyTorch vs engines on the same patients, for every non-empty subset of modalities present.

The engines' extractor runs once per input; subsets only re-aggregate and re-run rho, which is
exactly what the runtime does when a modality is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from hypermm_edge.manifest import Manifest
from hypermm_edge.model.checkpoint import load_checkpoint
from hypermm_edge.model.hypermm import ModalityInput
from hypermm_edge.readers.patient import read_patient
from hypermm_edge.runtime.predictor import Predictor, logits_to_probabilities

# Largest |probability difference| accepted per precision (the worst part decides).
BOUNDS = {"fp32": 1e-4, "fp16": 1e-2, "int8": 0.1}


@dataclass
class SubsetCheck:
    patient: str
    modalities: tuple[str, ...]
    torch_probability: np.ndarray
    engine_probability: np.ndarray

    @property
    def max_abs_diff(self) -> float:
        return float(np.max(np.abs(self.torch_probability - self.engine_probability)))

    @property
    def agree(self) -> bool:
        return int(np.argmax(self.torch_probability)) == int(np.argmax(self.engine_probability))


def precision_bound(manifest: Manifest) -> tuple[str, float]:
    worst = max((p.precision for p in manifest.parts.values()), key=lambda p: BOUNDS[p])
    return worst, BOUNDS[worst]


def verify_patients(checkpoint: Path, engine_dir: Path, patient_dirs: list[Path]) -> list[SubsetCheck]:
    model = load_checkpoint(checkpoint)
    predictor = Predictor(engine_dir)
    checks = []
    for folder in patient_dirs:
        patient = read_patient(folder, model.config)
        rows = {x.modality.name: predictor.extract(x) for x in patient.inputs}
        tensors = {x.modality.name: torch.from_numpy(x.slices) for x in patient.inputs}
        names = list(rows)
        for k in range(1, len(names) + 1):
            for subset in combinations(names, k):
                engine = predictor.predict_rows({n: rows[n] for n in subset}).probabilities
                with torch.no_grad():
                    ref = logits_to_probabilities(model([ModalityInput(n, tensors[n]) for n in subset])[0].numpy())
                checks.append(SubsetCheck(patient.patient, subset, ref, engine))
    return checks
