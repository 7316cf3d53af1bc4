"""Real ONNX files, real ONNX Runtime sessions, compared with PyTorch on real NIfTI patients."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from hypermm_edge.cli.app import app
from hypermm_edge.errors import ConfigError, EngineError
from hypermm_edge.export.build import BuildRequest, build_engines, parse_precision
from hypermm_edge.manifest import Manifest, Profile
from hypermm_edge.model.checkpoint import load_checkpoint
from hypermm_edge.model.hypermm import ModalityInput, probabilities_from_logits
from hypermm_edge.readers.patient import read_patient
from hypermm_edge.runtime.predictor import Predictor
from hypermm_edge.verify import BOUNDS, verify_patients

PROFILE = Profile(max_batch=4, opt_batch=1, max_slices=8, opt_slices=4)


def _full_patients(cohort: Path, config) -> list[Path]:
    return [p for p in sorted(cohort.iterdir()) if p.is_dir() and len(read_patient(p, config).inputs) == 2]


def test_manifest_and_onnx_files(engines_fp32, checkpoint):
    m = Manifest.load(engines_fp32)
    assert set(m.parts) == {"trunk", "head_PET", "head_MRI", "rho"}
    assert m.backend == "onnxruntime" and m.precision_summary() == "fp32"
    assert m.parts["trunk"].inputs == {"slices": ["batch", "slices", 3, 32, 32]}
    assert m.parts["head_MRI"].outputs == {"embedding": ["batch", 512]}
    assert {"hypermm_edge", "onnx", "onnxruntime"} <= set(m.tools)
    for part in m.parts.values():
        model = onnx.load(engines_fp32 / part.file)
        onnx.checker.check_model(model)
        ops = {n.op_type for n in model.graph.node}
        assert "Gemm" in ops or "Conv" in ops
    head_ops = {n.op_type for n in onnx.load(engines_fp32 / "head_MRI.onnx").graph.node}
    assert head_ops <= {"Conv", "Flatten", "Identity"}  # hypernetwork folded into constants
    runner = CliRunner().invoke(app, ["info", str(engines_fp32)])
    assert runner.exit_code == 0 and "head_MRI" in runner.output and "fp32" in runner.output


def test_fp32_features_and_probabilities_match_torch_for_every_subset(engines_fp32, checkpoint, cohort):
    model = load_checkpoint(checkpoint)
    predictor = Predictor(engines_fp32)
    patients = _full_patients(cohort, model.config)
    assert patients
    for folder in patients[:3]:
        ps = read_patient(folder, model.config)
        rows = {}
        for x in ps.inputs:
            rows[x.modality.name] = predictor.extract(x)
            with torch.no_grad():
                ids = model.modality_ids(x.modality.name, 1)
                expected = model.phi(torch.from_numpy(x.slices), ids).numpy()
            np.testing.assert_allclose(rows[x.modality.name], expected, atol=1e-5, rtol=1e-5)
        for k in (1, 2):
            for subset in itertools.combinations(rows, k):
                got = predictor.predict_rows({n: rows[n] for n in subset}).probabilities[1]
                with torch.no_grad():
                    ref = probabilities_from_logits(model([ModalityInput(x.modality.name, torch.from_numpy(
                        x.slices)) for x in ps.inputs if x.modality.name in subset]))[0, 0].item()
                assert abs(got - ref) < 1e-4


def test_chunked_slices_equal_unchunked(engines_fp32, checkpoint, tmp_path):
    predictor = Predictor(engines_fp32)
    rng = np.random.default_rng(0)
    slices = rng.normal(size=(1, 21, 3, 32, 32)).astype(np.float32)  # 21 > max_slices=8: 3 chunks
    chunked = predictor.trunk_features(slices)
    wide = tmp_path / "wide"
    build_engines(BuildRequest(checkpoint, wide, "onnxruntime",
                               profile=Profile(max_batch=4, opt_batch=1, max_slices=32, opt_slices=32)))
    whole = Predictor(wide).trunk_features(slices)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)
    images = rng.normal(size=(9, 1, 3, 32, 32)).astype(np.float32)  # 9 > max_batch=4
    np.testing.assert_allclose(predictor.trunk_features(images), Predictor(wide).trunk_features(images),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("precision", ["fp16", "trunk=int8,head=fp32,rho=fp32", "trunk=int8,head=fp16,rho=fp16"])
def test_reduced_precision_within_bounds(precision, checkpoint, cohort, tmp_path):
    out = tmp_path / "eng"
    manifest = build_engines(BuildRequest(checkpoint, out, "onnxruntime", parse_precision(precision),
                                          calibration_data=cohort, calibration_inputs=8, profile=PROFILE))
    trunk = onnx.load(out / manifest.parts["trunk"].file)
    ops = {n.op_type for n in trunk.graph.node}
    if "int8" in precision:
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        q = [i for i in trunk.graph.initializer if i.data_type == onnx.TensorProto.INT8]
        assert q, "int8 weights expected"
    else:
        assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in trunk.graph.initializer)
    config = load_checkpoint(checkpoint).config
    checks = verify_patients(checkpoint, out, _full_patients(cohort, config)[:3])
    worst = max(p.precision for p in manifest.parts.values())
    bound = BOUNDS["int8" if "int8" in precision else worst]
    assert checks and max(c.max_abs_diff for c in checks) <= bound


def test_int8_needs_calibration_and_only_for_trunk(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="calibration"):
        build_engines(BuildRequest(checkpoint, tmp_path / "x", "onnxruntime", parse_precision("int8")))
    with pytest.raises(ConfigError, match="trunk only"):
        parse_precision("rho=int8")
    with pytest.raises(ConfigError):
        parse_precision("trunk=int4")


def test_modified_engine_file_is_refused(engines_fp32, tmp_path, cohort, checkpoint):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(engines_fp32, copy)
    data = bytearray((copy / "rho.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "rho.onnx").write_bytes(bytes(data))
    predictor = Predictor(copy)
    x = np.zeros((1, 512), np.float32)
    with pytest.raises(EngineError, match="SHA-256"):
        predictor.classify(x)


def test_runtime_imports_without_torch(engines_fp32, cohort):
    """Predict in a subprocess where importing torch fails."""
    folder = next(p for p in sorted(cohort.iterdir()) if p.is_dir())
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
from hypermm_edge.runtime.batch import predict_patient
from hypermm_edge.runtime.predictor import Predictor
import hypermm_edge.engines.onnxruntime_backend, hypermm_edge.readers.dicom, hypermm_edge.bench.runner
from pathlib import Path
r = predict_patient(Predictor({str(engines_fp32)!r}), Path({str(folder)!r}))
assert r["status"] == "ok", r
assert "torch" not in sys.modules
print("OK", r["probability"])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK")


def test_verify_cli(engines_fp32, checkpoint, cohort):
    config = load_checkpoint(checkpoint).config
    folders = [str(p) for p in _full_patients(cohort, config)[:2]]
    result = CliRunner().invoke(app, ["verify", str(checkpoint), *folders, "--engines", str(engines_fp32)])
    assert result.exit_code == 0, result.output
    assert "MRI+PET" in result.output and "OK" in result.output


def test_build_engines_cli_auto_says_why(checkpoint, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["build-engines", str(checkpoint), "--out", str(out), "--max-slices", "8",
                                      "--opt-slices", "4", "--max-batch", "2"])
    assert result.exit_code == 0, result.output
    assert "backend: onnxruntime" in result.output  # no TensorRT here
    m = json.loads((out / "manifest.json").read_text())
    assert m["profile"] == {"max_batch": 2, "opt_batch": 1, "max_slices": 8, "opt_slices": 4}


def test_unavailable_provider_is_an_error_not_a_fallback(engines_fp32):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider present")
    predictor = Predictor(engines_fp32, device="cuda")
    with pytest.raises(EngineError, match="CUDAExecutionProvider"):
        predictor.engine("rho")
