"""Checkpoints: safetensors (no code can run on load) with the model config in its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from hypermm_edge.checkpoint_meta import FORMAT, read_checkpoint_config
from hypermm_edge.errors import CheckpointError
from hypermm_edge.model.hypermm import HyperMM

__all__ = ["load_checkpoint", "read_checkpoint_config", "save_checkpoint"]


def save_checkpoint(model: HyperMM, path: str | Path, extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": model.config.to_json(), "extra": json.dumps(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"corrupt checkpoint: {exc}", path=path) from exc


def load_checkpoint(path: str | Path) -> HyperMM:
    """Build the model its config describes and load every tensor strictly."""
    config, _ = read_checkpoint_config(path)
    model = HyperMM(config)
    state = load_state(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit the architecture in its config: {exc}", path=path) from exc
    model.eval()
    return model
