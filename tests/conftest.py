"""Shared tiny fixtures: 32x32 slices, random weights, real files on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

TINY_SIZE = 32


def tiny_config(modalities=None, labels=("CN", "AD"), aggregation="mean", rho_hidden=(32,)):
    from hypermm_edge.config import ArchConfig, ModalitySpec, ModelConfig, PreprocessConfig

    return ModelConfig(
        modalities=modalities or (ModalitySpec("PET", 0), ModalitySpec("MRI", 1)),
        labels=labels, aggregation=aggregation,
        preprocess=PreprocessConfig(crop=TINY_SIZE, resize_shorter=TINY_SIZE),
        arch=ArchConfig(classifier_hidden=32, rho_hidden=rho_hidden),
    )


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    from hypermm_edge.data.synth import SynthSpec, make_synthetic_cohort

    return make_synthetic_cohort(tmp_path_factory.mktemp("cohort"), SynthSpec(patients=12, size=20, seed=3,
                                                                             missing_rate=0.3))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny model (random weights everywhere, nonzero outputs)."""
    import torch

    from hypermm_edge.model.checkpoint import save_checkpoint
    from hypermm_edge.model.hypermm import HyperMM

    torch.manual_seed(0)
    model = HyperMM(tiny_config())
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    return save_checkpoint(model, path)


@pytest.fixture(scope="session")
def engines_fp32(tmp_path_factory, checkpoint) -> Path:
    from hypermm_edge.export.build import BuildRequest, build_engines
    from hypermm_edge.manifest import Profile

    out = tmp_path_factory.mktemp("engines") / "fp32"
    build_engines(BuildRequest(checkpoint, out, "onnxruntime",
                               profile=Profile(max_batch=4, opt_batch=1, max_slices=8, opt_slices=4)))
    return out
