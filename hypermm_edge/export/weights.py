"""Checkpoint tensors as numpy, and each modality's hypernetwork output folded to constants."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from hypermm_edge.checkpoint_meta import read_checkpoint_config as read_config_metadata
from hypermm_edge.config import TRUNK_CHANNELS, ModelConfig
from hypermm_edge.errors import CheckpointError


@dataclass
class ExportWeights:
    config: ModelConfig
    tensors: dict[str, np.ndarray]

    def trunk_convs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        idx = sorted({int(k.split(".")[3]) for k in self.tensors if k.startswith("phi.trunk.features.")})
        return [(self.tensors[f"phi.trunk.features.{i}.weight"], self.tensors[f"phi.trunk.features.{i}.bias"])
                for i in idx]

    @cached_property
    def _hypernet64(self) -> dict[str, np.ndarray]:
        return {k: v.astype(np.float64) for k, v in self.tensors.items()
                if k.startswith(("phi.embedding", "phi.hypernet"))}

    def head(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """The 1x1 conv the hypernetwork generates for this modality: weight [out, in], bias [out]."""
        t = self._hypernet64
        e = t["phi.embedding.weight"][self.config.modality(modality).id]
        h = np.maximum(t["phi.hypernet.0.weight"] @ e + t["phi.hypernet.0.bias"], 0.0)
        params = t["phi.hypernet.2.weight"] @ h + t["phi.hypernet.2.bias"]
        c = TRUNK_CHANNELS
        return params[: c * c].reshape(c, c).astype(np.float32), params[c * c :].astype(np.float32)

    def rho_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        idx = sorted({int(k.split(".")[1]) for k in self.tensors if k.startswith("rho.") and k.endswith(".weight")})
        return [(self.tensors[f"rho.{i}.weight"], self.tensors[f"rho.{i}.bias"]) for i in idx]


def load_export_weights(checkpoint: str | Path) -> ExportWeights:
    config, _ = read_config_metadata(checkpoint)
    try:
        tensors = load_file(str(checkpoint))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"corrupt checkpoint: {exc}", path=checkpoint) from exc
    return ExportWeights(config, tensors)
