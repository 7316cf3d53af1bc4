"""The training loop, top to bottom: split, features, phase 1, phase 2, test metrics.

Phase 1 trains phi's conditioned layer, the hypernetwork, the 1x1 decoder and the phase-1
classifier on single inputs (MSE reconstruction of the pooled trunk features + classification
loss), with early stopping on training loss. Phase 2 freezes phi and trains rho on whole
patients, with early stopping on validation loss. `end_to_end` skips phase 1 and trains phi's
conditioned parts and rho together on patients (the paper's "w/o 2-steps" ablation).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hypermm_edge.config import ModelConfig
from hypermm_edge.data.cohort import read_cohort, split_patients
from hypermm_edge.errors import DatasetError
from hypermm_edge.metrics import classification_metrics
from hypermm_edge.model.checkpoint import save_checkpoint
from hypermm_edge.model.hypermm import HyperMM, aggregate, probabilities_from_logits
from hypermm_edge.model.trunk import load_backbone_weights
from hypermm_edge.train.features import PatientFeatures, load_patient_features


@dataclass
class TrainConfig:
    seed: int = 0
    lr: float = 1e-4
    phase2_lr: float | None = None  # rho's learning rate; None: the same as lr
    weight_decay: float = 5e-4
    phase1_epochs: int = 50
    phase2_epochs: int = 100
    patience: int = 10
    end_to_end: bool = False
    feature_cache: bool = True
    backbone_weights: str | None = None


@dataclass
class TrainReport:
    test_metrics: dict[str, float]
    val_metrics: dict[str, float]
    history: list[dict] = field(default_factory=list)
    seconds_per_epoch: dict[str, float] = field(default_factory=dict)
    feature_seconds: float = 0.0
    split: dict[str, list[str]] = field(default_factory=dict)


EpochCallback = Callable[[str, int, int, dict], None]


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], labels.float())
    return F.cross_entropy(logits, labels)


def _metrics_from_logits(labels: list[int], logits: torch.Tensor) -> dict[str, float]:
    probs = probabilities_from_logits(logits).detach().numpy()
    return classification_metrics(np.asarray(labels), probs[:, 0] if probs.shape[1] == 1 else probs)


def _auc(labels: list[int], logits: torch.Tensor) -> float:
    return _metrics_from_logits(labels, logits)["auc"]


class _EarlyStopping:
    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.bad = patience, float("inf"), 0
        self.state: dict[str, torch.Tensor] | None = None

    def step(self, loss: float, model: torch.nn.Module) -> bool:
        """Record this epoch; True when training should stop."""
        if loss < self.best - 1e-7:
            self.best, self.bad, self.state = loss, 0, copy.deepcopy(model.state_dict())
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def patient_logits(model: HyperMM, p: PatientFeatures) -> torch.Tensor:
    z = model.phi.condition(p.features(), p.modality_ids).flatten(1)
    return model.classify_elements(z)


def _phase1(model: HyperMM, data: list[PatientFeatures], cfg: TrainConfig, rng: np.random.Generator,
            on_epoch: EpochCallback | None, history: list[dict]) -> float:
    phi = model.phi
    params = [*phi.embedding.parameters(), *phi.hypernet.parameters(), *phi.decoder.parameters(),
              *phi.classifier.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    samples = [(i, e) for i, p in enumerate(data) for e in range(len(p.modality_ids))]
    stopper = _EarlyStopping(cfg.patience)
    seconds = []
    for epoch in range(cfg.phase1_epochs):
        t0 = time.perf_counter()
        phi.train()
        total, labels, logits_seen = 0.0, [], []
        for k in rng.permutation(len(samples)):
            i, e = samples[k]
            p = data[i]
            f = p.features()[e : e + 1]
            z = phi.condition(f, p.modality_ids[e : e + 1])
            logits = phi.classifier(z.flatten(1))
            y = torch.tensor([p.label])
            loss = F.mse_loss(phi.decoder(z), f) + _loss(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            labels.append(p.label)
            logits_seen.append(logits.detach())
        seconds.append(time.perf_counter() - t0)
        mean_loss = total / len(samples)
        row = {"phase": 1, "epoch": epoch + 1, "train_loss": mean_loss,
               "train_auc": _auc(labels, torch.cat(logits_seen))}
        history.append(row)
        if on_epoch:
            on_epoch("phase 1", epoch + 1, cfg.phase1_epochs, row)
        if stopper.step(mean_loss, phi):
            break
    stopper.restore(phi)
    return float(np.mean(seconds))


def _evaluate(model: HyperMM, data: list[PatientFeatures]) -> tuple[float, list[int], torch.Tensor]:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([patient_logits(model, p) for p in data])
        labels = [p.label for p in data]
        return _loss(logits, torch.tensor(labels)).item(), labels, logits


def _patient_phase(model: HyperMM, train: list[PatientFeatures], val: list[PatientFeatures],
                   cfg: TrainConfig, rng: np.random.Generator, on_epoch: EpochCallback | None,
                   history: list[dict], phase: str) -> float:
    """Phase 2 (rho only, phi frozen: aggregates precomputed) or end-to-end (phi + rho)."""
    end_to_end = phase == "end-to-end"
    if end_to_end:
        phi = model.phi
        params = [*phi.embedding.parameters(), *phi.hypernet.parameters(), *model.rho.parameters()]
        inputs: list = train
    else:
        model.phi.requires_grad_(False)
        params = list(model.rho.parameters())
        with torch.no_grad():  # phi is frozen: each patient's aggregate is a constant
            inputs = [aggregate(model.phi.condition(p.features(), p.modality_ids).flatten(1),
                                model.config.aggregation) for p in train]
    trained = model if end_to_end else model.rho
    lr = cfg.lr if end_to_end or cfg.phase2_lr is None else cfg.phase2_lr
    opt = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    stopper = _EarlyStopping(cfg.patience)
    epochs = cfg.phase2_epochs
    seconds = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        total = 0.0
        for k in rng.permutation(len(train)):
            y = torch.tensor([train[k].label])
            logits = patient_logits(model, inputs[k]) if end_to_end else model.rho(inputs[k])
            loss = _loss(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        seconds.append(time.perf_counter() - t0)
        val_loss, labels, logits = _evaluate(model, val or train)
        row = {"phase": 2 if not end_to_end else "e2e", "epoch": epoch + 1, "train_loss": total / len(train),
               "val_loss": val_loss, "val_auc": _auc(labels, logits)}
        history.append(row)
        if on_epoch:
            on_epoch(phase, epoch + 1, epochs, row)
        if stopper.step(val_loss, trained):
            break
    stopper.restore(trained)
    model.phi.requires_grad_(True)
    model.phi.trunk.requires_grad_(False)
    return float(np.mean(seconds))


def _metrics(model: HyperMM, data: list[PatientFeatures]) -> dict[str, float]:
    if not data:
        return {}
    _, labels, logits = _evaluate(model, data)
    return _metrics_from_logits(labels, logits)


def train(data_dir: str | Path, out: str | Path, model_config: ModelConfig, cfg: TrainConfig,
          on_epoch: EpochCallback | None = None, on_patient: Callable[[], None] | None = None
          ) -> tuple[HyperMM, TrainReport]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    patients, labels = read_cohort(data_dir, model_config.labels)
    train_set, val_set, test_set = split_patients(patients, cfg.seed)
    if not train_set:
        raise DatasetError("too few patients to train", path=data_dir)

    model = HyperMM(model_config)
    load_backbone_weights(model.phi.trunk, cfg.backbone_weights)

    t0 = time.perf_counter()
    def features(ps: list) -> list[PatientFeatures]:
        return load_patient_features(model.phi, ps, model_config, cfg.feature_cache, on_patient=on_patient)
    train_f, val_f, test_f = features(train_set), features(val_set), features(test_set)
    feature_seconds = time.perf_counter() - t0

    history: list[dict] = []
    timing = {}
    if cfg.end_to_end:
        timing["end_to_end"] = _patient_phase(model, train_f, val_f, cfg, rng, on_epoch, history, "end-to-end")
    else:
        timing["phase1"] = _phase1(model, train_f, cfg, rng, on_epoch, history)
        timing["phase2"] = _patient_phase(model, train_f, val_f, cfg, rng, on_epoch, history, "phase 2")
    model.eval()

    report = TrainReport(
        test_metrics=_metrics(model, test_f), val_metrics=_metrics(model, val_f), history=history,
        seconds_per_epoch=timing, feature_seconds=feature_seconds,
        split={"train": [p.patient for p in train_set], "val": [p.patient for p in val_set],
               "test": [p.patient for p in test_set]},
    )
    out = Path(out)
    save_checkpoint(model, out, extra={"train": asdict(cfg), "split": report.split})
    metrics_path = out.with_name(out.name.removesuffix(".safetensors") + ".metrics.json")
    metrics_path.write_text(json.dumps(asdict(report), indent=2, default=float))
    return model, report
