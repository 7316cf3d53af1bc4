"""HyperMM: phi (frozen trunk, slice max-pool, hypernetwork-conditioned 1x1 conv) and rho.

Parameter names follow the reference implementation where that is free (rho, hypernet,
embedding, decoder, classifier), so the key remap in `reference.py` stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hypermm_edge.config import TRUNK_CHANNELS, ModelConfig
from hypermm_edge.model.trunk import VGG11Trunk


@dataclass
class ModalityInput:
    """One input present in a patient's set: [B, S, 3, H, W] (volume: B=1; images: S=1)."""

    modality: str
    slices: torch.Tensor


class Phi(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        a = config.arch
        c = TRUNK_CHANNELS
        self.trunk = VGG11Trunk()
        self.trunk.requires_grad_(False)
        self.embedding = nn.Embedding(a.num_embeddings, a.embedding_dim)
        self.hypernet = nn.Sequential(
            nn.Linear(a.embedding_dim, a.hypernet_hidden), nn.ReLU(), nn.Linear(a.hypernet_hidden, c * c + c)
        )
        self.decoder = nn.ConvTranspose2d(c, c, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Linear(config.feature_dim, a.classifier_hidden), nn.ReLU(),
            nn.Linear(a.classifier_hidden, config.num_outputs),
        )

    def train(self, mode: bool = True) -> Phi:
        super().train(mode)
        self.trunk.eval()  # frozen: always inference behaviour
        return self

    def pooled_features(self, slices: torch.Tensor) -> torch.Tensor:
        """[B, S, 3, H, W] -> trunk per slice -> max over S -> [B, 512, h, w]."""
        b, s = slices.shape[:2]
        feats = self.trunk(slices.reshape(b * s, *slices.shape[2:]))
        return feats.reshape(b, s, *feats.shape[1:]).amax(dim=1)

    def conditioned_weights(self, modality_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality ids [B] -> generated 1x1 conv weight [B, out, in] and bias [B, out]."""
        c = TRUNK_CHANNELS
        params = self.hypernet(self.embedding(modality_ids))
        return params[:, : c * c].reshape(-1, c, c), params[:, c * c :]

    def condition(self, features: torch.Tensor, modality_ids: torch.Tensor) -> torch.Tensor:
        """The hypernetwork-conditioned 1x1 conv, each row with its own modality's weights."""
        weight, bias = self.conditioned_weights(modality_ids)
        return torch.einsum("boi,bihw->bohw", weight, features) + bias[:, :, None, None]

    def forward(self, slices: torch.Tensor, modality_ids: torch.Tensor) -> torch.Tensor:
        return self.condition(self.pooled_features(slices), modality_ids).flatten(1)


class Rho(nn.Sequential):
    """MLP on the aggregate: (Linear, ReLU, Dropout) per hidden size, then Linear to logits."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float) -> None:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(in_dim, h), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = h
        layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)


def aggregate(elements: torch.Tensor, how: str) -> torch.Tensor:
    """[E, D] features of the inputs present -> [1, D]. Order-independent by construction."""
    if how == "mean":
        return elements.mean(dim=0, keepdim=True)
    if how == "sum":
        return elements.sum(dim=0, keepdim=True)
    if how == "max":
        return elements.amax(dim=0, keepdim=True)
    raise ValueError(f"unknown aggregation {how!r}")


class HyperMM(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.phi = Phi(config)
        a = config.arch
        self.rho = Rho(config.feature_dim, a.rho_hidden, config.num_outputs, a.dropout)

    def modality_ids(self, name: str, count: int) -> torch.Tensor:
        return torch.full((count,), self.config.modality(name).id, dtype=torch.long)

    def embed(self, inputs: Sequence[ModalityInput]) -> torch.Tensor:
        """phi of every element present, stacked: [E, D]."""
        if not inputs:
            raise ValueError("a patient needs at least one input")
        rows = [self.phi(x.slices, self.modality_ids(x.modality, x.slices.shape[0])) for x in inputs]
        return torch.cat(rows, dim=0)

    def classify_elements(self, elements: torch.Tensor) -> torch.Tensor:
        return self.rho(aggregate(elements, self.config.aggregation))

    def forward(self, inputs: Sequence[ModalityInput]) -> torch.Tensor:
        """A patient's set of inputs -> logits [1, num_outputs]."""
        return self.classify_elements(self.embed(inputs))


def probabilities_from_logits(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)
