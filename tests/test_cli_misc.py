"""Smaller CLI paths: synth, multi-class engines end to end, --debug, version."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
from typer.testing import CliRunner

from hypermm_edge import __version__
from hypermm_edge.cli.app import app
from hypermm_edge.config import ModalitySpec
from hypermm_edge.export.build import BuildRequest, build_engines
from hypermm_edge.manifest import Profile
from hypermm_edge.model.checkpoint import save_checkpoint
from hypermm_edge.model.hypermm import HyperMM, ModalityInput
from hypermm_edge.readers.patient import read_patient
from tests.conftest import tiny_config


def test_synth_cli_writes_the_documented_layout(tmp_path):
    result = CliRunner().invoke(app, ["synth", str(tmp_path), "--patients", "4", "--size", "12", "--histology",
                                      "--missing-rate", "0"])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "labels.csv").read_text().splitlines()
    assert rows[0] == "patient,label" and len(rows) == 5
    assert {p.name for p in (tmp_path / "patient_000").iterdir()} == {"MRI.nii.gz", "PET.nii.gz", "HISTO"}
    assert len(list((tmp_path / "patient_000" / "HISTO").glob("*x.png"))) == 4


def test_multiclass_engines_match_torch_softmax(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config(modalities=(ModalitySpec("MRI", 0), ModalitySpec("HISTO", 1, "images")),
                      labels=("low", "mid", "high"), aggregation="max", rho_hidden=(16, 8))
    model = HyperMM(cfg).eval()
    ckpt = save_checkpoint(model, tmp_path / "m.safetensors")
    build_engines(BuildRequest(ckpt, tmp_path / "eng", "onnxruntime",
                               profile=Profile(max_batch=2, opt_batch=1, max_slices=4, opt_slices=4)))
    patient = tmp_path / "p"
    (patient / "histo").mkdir(parents=True)
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(3):  # 3 images > max_batch=2: the trunk runs in two chunks
        Image.fromarray((rng.random((40, 30, 3)) * 255).astype(np.uint8)).save(patient / "histo" / f"{i}.jpg")
    proc = subprocess.run([sys.executable, "-m", "hypermm_edge.cli.app", "predict", str(patient), "--engines",
                           str(tmp_path / "eng"), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert set(record["probabilities"]) == {"low", "mid", "high"} and "probability" not in record
    assert abs(sum(record["probabilities"].values()) - 1) < 1e-6
    x = read_patient(patient, cfg).inputs[0]
    with torch.no_grad():
        expected = torch.softmax(model([ModalityInput("HISTO", torch.from_numpy(x.slices))]), dim=-1)[0]
    got = np.array([record["probabilities"][k] for k in cfg.labels])
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
    assert record["prediction"] == cfg.labels[int(np.argmax(got))]


def test_errors_are_one_line_unless_debug(tmp_path):
    base = [sys.executable, "-m", "hypermm_edge.cli.app"]
    plain = subprocess.run([*base, "info", str(tmp_path)], capture_output=True, text=True)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and "[engine]" in plain.stderr
    debug = subprocess.run([*base, "--debug", "info", str(tmp_path)], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    version = subprocess.run([*base, "version"], capture_output=True, text=True)
    assert version.stdout.strip() == __version__
