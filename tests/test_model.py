from __future__ import annotations

import itertools

import pytest
import torch

from hypermm_edge.config import ModalitySpec
from hypermm_edge.model.hypermm import HyperMM, ModalityInput
from tests.conftest import TINY_SIZE, tiny_config


def _inputs(seed=0, volumes=("PET", "MRI"), images=None):
    g = torch.Generator().manual_seed(seed)
    out = [ModalityInput(m, torch.randn(1, 5 + i, 3, TINY_SIZE, TINY_SIZE, generator=g))
           for i, m in enumerate(volumes)]
    if images:
        out.append(ModalityInput(images, torch.randn(4, 1, 3, TINY_SIZE, TINY_SIZE, generator=g)))
    return out


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HyperMM(tiny_config()).eval()


def test_output_shapes_for_volumes_and_image_sets():
    torch.manual_seed(0)
    cfg = tiny_config(modalities=(ModalitySpec("MRI", 0), ModalitySpec("HISTO", 1, "images")),
                      labels=("a", "b", "c"))
    m = HyperMM(cfg).eval()
    with torch.no_grad():
        vol = _inputs(volumes=("MRI",))
        assert m.embed(vol).shape == (1, cfg.feature_dim)
        imgs = _inputs(volumes=(), images="HISTO")
        assert m.embed(imgs).shape == (4, cfg.feature_dim)  # each image is its own element
        assert m(vol + imgs).shape == (1, 3)
        assert m.phi.pooled_features(vol[0].slices).shape == (1, 512, 1, 1)


def test_conditioned_conv_uses_hypernetwork_output(model):
    c = 512
    mid = model.config.modality("MRI").id
    with torch.no_grad():
        params = model.phi.hypernet(model.phi.embedding.weight[mid])
        weight, bias = model.phi.conditioned_weights(torch.tensor([mid]))
        assert torch.equal(weight[0], params[: c * c].reshape(c, c))
        assert torch.equal(bias[0], params[c * c :])
        f = torch.randn(1, c, 1, 1)
        expected = torch.nn.functional.conv2d(f, params[: c * c].reshape(c, c, 1, 1), params[c * c :])
        torch.testing.assert_close(model.phi.condition(f, torch.tensor([mid])), expected, rtol=1e-5, atol=1e-5)
        other = model.phi.conditioned_weights(torch.tensor([model.config.modality("PET").id]))[0]
        assert not torch.allclose(weight, other)


def test_every_nonempty_subset_gives_valid_output(model):
    inputs = _inputs()
    outputs = set()
    with torch.no_grad():
        for k in (1, 2):
            for subset in itertools.combinations(inputs, k):
                logits = model(list(subset))
                assert logits.shape == (1, 1) and torch.isfinite(logits).all()
                outputs.add(round(logits.item(), 6))
    assert len(outputs) == 3  # each subset is a different set, so a different output
    with pytest.raises(ValueError):
        model([])


def test_permutation_invariance(model):
    inputs = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), model(inputs[::-1]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("how", ["mean", "sum", "max"])
def test_aggregations(how):
    torch.manual_seed(0)
    m = HyperMM(tiny_config(aggregation=how)).eval()
    inputs = _inputs()
    with torch.no_grad():
        rows = m.embed(inputs)
        expected = {"mean": rows.mean(0), "sum": rows.sum(0), "max": rows.max(0).values}[how]
        torch.testing.assert_close(m(inputs), m.rho(expected[None]))
        torch.testing.assert_close(m(inputs), m(inputs[::-1]), rtol=1e-6, atol=1e-6)


def test_rho_three_layer_variant():
    m = HyperMM(tiny_config(rho_hidden=(64, 32, 16)))
    linear = [k for k in m.state_dict() if k.startswith("rho.") and k.endswith(".weight")]
    assert linear == ["rho.0.weight", "rho.3.weight", "rho.6.weight", "rho.9.weight"]


def test_trunk_is_frozen_and_stays_in_eval(model):
    model.train()
    assert not model.phi.trunk.training
    assert not any(p.requires_grad for p in model.phi.trunk.parameters())
    model.eval()


def test_backbone_weights_from_a_local_torchvision_file(tmp_path):
    from hypermm_edge.errors import CheckpointError
    from hypermm_edge.model.trunk import VGG11Trunk, conv_layer_indices, load_backbone_weights

    source = VGG11Trunk()
    # torchvision's vgg11 state_dict layout: features.* plus a classifier we must ignore
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, tmp_path / "vgg11.pth")
    target = VGG11Trunk()
    load_backbone_weights(target, str(tmp_path / "vgg11.pth"))
    for i in conv_layer_indices():
        assert torch.equal(target.features[i].weight, source.features[i].weight)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_backbone_weights(target, str(tmp_path / "bad.pth"))
    with pytest.raises(CheckpointError, match="not found"):
        load_backbone_weights(target, str(tmp_path / "missing.pth"))
