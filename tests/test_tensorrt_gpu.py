"""TensorRT on a real GPU: runs where TensorRT, pycuda and a GPU exist; skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from hypermm_edge.engines.base import backend_class
from hypermm_edge.errors import EngineError

_ok, _why = backend_class("tensorrt").availability()
pytestmark = pytest.mark.skipif(not _ok, reason=f"TensorRT backend not usable here: {_why}")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_matches_onnxruntime(precision, checkpoint, engines_fp32, cohort, tmp_path):
    from hypermm_edge.export.build import BuildRequest, build_engines, parse_precision
    from hypermm_edge.manifest import Profile
    from hypermm_edge.readers.patient import read_patient
    from hypermm_edge.runtime.predictor import Predictor

    out = tmp_path / "trt"
    manifest = build_engines(BuildRequest(checkpoint, out, "tensorrt", parse_precision(precision),
                                          profile=Profile(max_batch=4, opt_batch=1, max_slices=8, opt_slices=4)))
    assert manifest.device["gpu"] and manifest.device["tensorrt"]
    assert (out / "timing.cache").is_file()
    trt_pred, ort_pred = Predictor(out), Predictor(engines_fp32)
    bound = 1e-4 if precision == "fp32" else 1e-2
    for folder in [p for p in sorted(cohort.iterdir()) if p.is_dir()][:3]:
        patient = read_patient(folder, trt_pred.config)
        a, b = trt_pred.predict(patient), ort_pred.predict(patient)
        assert np.max(np.abs(a.probabilities - b.probabilities)) < bound


def test_engine_for_another_gpu_is_refused(checkpoint, tmp_path):
    from hypermm_edge.export.build import BuildRequest, build_engines
    from hypermm_edge.manifest import Manifest, Profile
    from hypermm_edge.runtime.predictor import Predictor

    out = tmp_path / "trt"
    build_engines(BuildRequest(checkpoint, out, "tensorrt", profile=Profile(max_batch=2, max_slices=4,
                                                                            opt_slices=4)))
    m = Manifest.load(out)
    m.device["gpu"] = "Some Other GPU"
    m.save(out)
    with pytest.raises(EngineError, match="Rebuild"):
        Predictor(out).engine("rho")
