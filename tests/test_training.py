"""Training on a small synthetic cohort (32x32 slices, random trunk) through the real CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hypermm_edge.cli.app import app
from hypermm_edge.data.synth import SynthSpec, make_synthetic_cohort
from hypermm_edge.model.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def train_cohort(tmp_path_factory):
    return make_synthetic_cohort(tmp_path_factory.mktemp("train"), SynthSpec(patients=40, size=32, seed=0))


def test_two_phase_training_learns(train_cohort, tmp_path):
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(app, [
        "train", str(train_cohort), "--out", str(out), "--size", "32", "--resize", "32",
        "--classifier-hidden", "64", "--rho-hidden", "64", "--epochs1", "8", "--epochs2", "40",
        "--lr", "3e-4", "--lr2", "1e-3", "--seed", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m.metrics.json").read_text())
    phase2 = [r for r in report["history"] if r["phase"] == 2]
    assert phase2[-1]["train_loss"] < phase2[0]["train_loss"]
    assert min(r["val_loss"] for r in phase2) < phase2[0]["val_loss"]
    assert report["test_metrics"]["n"] == 12
    assert report["test_metrics"]["auc"] > 0.5  # held-out patients, fixed seed
    assert set(report["test_metrics"]) >= {"accuracy", "auc", "f1", "precision", "recall"}
    model = load_checkpoint(out)
    assert [m.name for m in model.config.modalities] == ["MRI", "PET"]
    assert "test metrics" in result.output


def test_end_to_end_ablation_and_determinism(train_cohort, tmp_path):
    args = ["train", str(train_cohort), "--size", "32", "--resize", "32", "--classifier-hidden", "16",
            "--rho-hidden", "16", "--epochs2", "3", "--end-to-end", "--seed", "7"]
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / f"{name}.safetensors")])
        assert result.exit_code == 0, result.output
    a = json.loads((tmp_path / "a.metrics.json").read_text())
    b = json.loads((tmp_path / "b.metrics.json").read_text())
    assert [r["phase"] for r in a["history"]] == ["e2e"] * 3
    assert a["history"] == b["history"] and a["test_metrics"] == b["test_metrics"]
