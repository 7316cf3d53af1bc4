"""Checkpoints load without running code; reference state_dicts import to equal predictions."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from hypermm_edge.cli.app import app
from hypermm_edge.errors import CheckpointError
from hypermm_edge.model.checkpoint import load_checkpoint, save_checkpoint
from hypermm_edge.model.hypermm import HyperMM, ModalityInput
from hypermm_edge.model.reference import import_reference
from tests.conftest import TINY_SIZE, tiny_config


class ReferenceLayoutHyperMM(nn.Module):
    """Written from shared/notes/reference-checkpoint.md alone: the reference's key layout and
    its forward pass (hypernetwork applied at every call, 1x1 conv via F.conv2d)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        cfg = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.phi = nn.Module()
        self.phi.pretrained_model = nn.Module()
        self.phi.pretrained_model.features = nn.Sequential(*layers)
        self.phi.pretrained_model.classifier = nn.Sequential(nn.Linear(25088, 64), nn.ReLU(), nn.Dropout(),
                                                             nn.Linear(64, 64), nn.ReLU(), nn.Dropout(),
                                                             nn.Linear(64, 10))
        self.phi.embedding = nn.Embedding(20, 5)
        self.phi.hypernet = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 512 * 512 + 512))
        self.phi.decoder = nn.ConvTranspose2d(512, 512, 1)
        self.phi.classifier = nn.Sequential(nn.Linear(feature_dim, 512), nn.ReLU(), nn.Linear(512, 1))
        self.phi.encoder = nn.Sequential(nn.Conv2d(512, 512, 1))
        self.rho = nn.Sequential(nn.Linear(feature_dim, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 1))
        for m in self.modules():  # non-trivial trunk scale so differences would show
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, inputs: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
        feats = []
        for mod_id, slices in inputs:
            x = self.phi.pretrained_model.features(slices).max(dim=0, keepdim=True).values
            params = self.phi.hypernet(self.phi.embedding(torch.tensor(mod_id)))
            w = params[: 512 * 512].view(512, 512, 1, 1)
            b = params[512 * 512 :]
            feats.append(nn.functional.conv2d(x, w, b).flatten(1))
        return torch.sigmoid(self.rho(torch.stack(feats).mean(dim=0)))


def test_import_reference_matches_reference_forward(tmp_path):
    torch.manual_seed(1)
    ref = ReferenceLayoutHyperMM(feature_dim=512).eval()
    path = tmp_path / "reference.pth"
    torch.save(ref.state_dict(), path)
    out = tmp_path / "imported.safetensors"
    result = CliRunner().invoke(app, ["import-reference", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    model = load_checkpoint(out)
    assert [m.name for m in model.config.modalities] == ["PET", "MRI"]
    assert model.config.input_size == TINY_SIZE
    g = torch.Generator().manual_seed(2)
    pet, mri = (torch.randn(n, 3, TINY_SIZE, TINY_SIZE, generator=g) for n in (6, 9))
    cases = [[(0, pet)], [(1, mri)], [(0, pet), (1, mri)]]
    with torch.no_grad():
        for case in cases:
            expected = ref(case)
            names = {0: "PET", 1: "MRI"}
            got = torch.sigmoid(model([ModalityInput(names[i], s[None]) for i, s in case]))
            assert torch.allclose(got, expected, atol=1e-5), (got, expected)


def test_import_reference_rejects_unexpected_keys(tmp_path):
    torch.save({"something.else": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="unexpected keys"):
        import_reference(tmp_path / "x.pth", ["PET", "MRI"])


def _malicious_pickle(path, marker):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with zipfile.ZipFile(path, "w") as z:  # torch's zip layout, with a code-running pickle inside
        z.writestr("archive/data.pkl", pickle.dumps({"rho.0.weight": Payload()}, protocol=2))
        z.writestr("archive/version", "3\n")
    with open(str(path) + ".plain", "wb") as f:
        pickle.dump({"x": Payload()}, f)


@pytest.mark.parametrize("force_env", [False, True])
def test_pickle_payload_is_refused(tmp_path, monkeypatch, force_env):
    if force_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pth"
    _malicious_pickle(bad, marker)
    for candidate in (bad, tmp_path / "bad.pth.plain"):
        with pytest.raises(CheckpointError):
            import_reference(candidate, ["PET", "MRI"])
        with pytest.raises(CheckpointError):
            load_checkpoint(candidate)
    assert not marker.exists()
    # and through the CLI in a fresh process, so no state of this one helps
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    proc = subprocess.run([sys.executable, "-m", "hypermm_edge.cli.app", "import-reference", str(bad), "--out",
                           str(tmp_path / "o.safetensors")], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "checkpoint" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_checkpoint_roundtrip_and_clear_errors(tmp_path):
    torch.manual_seed(0)
    model = HyperMM(tiny_config()).eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    # wrong architecture: a config whose rho is bigger than the stored tensors
    from safetensors.torch import load_file, save_file

    from hypermm_edge.checkpoint_meta import FORMAT

    state = load_file(str(path))
    bigger = tiny_config(rho_hidden=(64,)).to_json()
    save_file(state, str(tmp_path / "wrong.safetensors"), metadata={"format": FORMAT, "config": bigger})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "wrong.safetensors")
    # corrupt: truncated file
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "trunc.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
