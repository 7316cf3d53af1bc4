"""Import of state_dicts saved by the paper's reference implementation.

The key remap is a pure function kept apart from the model (as timm does), and the config is
inferred from tensor shapes so that non-default sizes import too.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from hypermm_edge.config import (
    TRUNK_CHANNELS,
    TRUNK_STRIDE,
    ArchConfig,
    ModalitySpec,
    ModelConfig,
    PreprocessConfig,
)
from hypermm_edge.errors import CheckpointError
from hypermm_edge.model.hypermm import HyperMM

_KEEP = ("phi.embedding.", "phi.hypernet.", "phi.decoder.", "phi.classifier.", "rho.")
_DROP = ("phi.pretrained_model.classifier.", "phi.encoder.")


def remap_reference_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference names -> ours. Drops VGG's ImageNet classifier and the stale phi.encoder."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key.startswith("phi.pretrained_model.features."):
            out["phi.trunk.features." + key.removeprefix("phi.pretrained_model.features.")] = value
        elif key.startswith(_KEEP):
            out[key] = value
        elif not key.startswith(_DROP):
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"unexpected keys for a reference HyperMM state_dict: {unknown[:8]}")
    return out


def infer_reference_config(state: dict[str, torch.Tensor], modality_names: list[str]) -> ModelConfig:
    try:
        emb = state["phi.embedding.weight"]
        hyper_hidden = state["phi.hypernet.0.weight"].shape[0]
        cls_hidden = state["phi.classifier.0.weight"].shape[0]
        rho_linear = sorted(int(k.split(".")[1]) for k in state if k.startswith("rho.") and k.endswith(".weight"))
        rho_hidden = tuple(state[f"rho.{i}.weight"].shape[0] for i in rho_linear[:-1])
        num_outputs = state[f"rho.{rho_linear[-1]}.weight"].shape[0]
        feature_dim = state[f"rho.{rho_linear[0]}.weight"].shape[1]
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"not a reference HyperMM state_dict: missing {exc}") from exc
    hw = math.isqrt(feature_dim // TRUNK_CHANNELS)
    if TRUNK_CHANNELS * hw * hw != feature_dim:
        raise CheckpointError(f"rho input size {feature_dim} is not 512*h*w with h == w")
    crop = hw * TRUNK_STRIDE
    labels = ("CN", "AD") if num_outputs == 1 else tuple(f"class{i}" for i in range(num_outputs))
    if len(modality_names) > emb.shape[0]:
        raise CheckpointError(f"{len(modality_names)} modalities but the embedding has {emb.shape[0]} rows")
    return ModelConfig(
        modalities=tuple(ModalitySpec(name, i) for i, name in enumerate(modality_names)),
        labels=labels,
        preprocess=PreprocessConfig(crop=crop, resize_shorter=round(crop * 256 / 224)),
        arch=ArchConfig(num_embeddings=emb.shape[0], embedding_dim=emb.shape[1], hypernet_hidden=hyper_hidden,
                        classifier_hidden=cls_hidden, rho_hidden=rho_hidden),
    )


def read_reference_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """torch.load with weights_only=True passed explicitly: pickled code is refused, and
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot override an explicit argument."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("state_dict file not found", path=path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, zip errors...
        raise CheckpointError(f"refused or unreadable (only plain tensors are accepted): {exc}", path=path) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("expected a state_dict (a mapping of names to tensors)", path=path)
    return obj


def import_reference(path: str | Path, modality_names: list[str]) -> HyperMM:
    state = remap_reference_keys(read_reference_state_dict(path))
    config = infer_reference_config(state, modality_names)
    model = HyperMM(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"state_dict does not fit HyperMM: {exc}", path=path) from exc
    return model.eval()
