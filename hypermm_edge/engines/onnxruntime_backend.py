"""ONNX Runtime: CPU by default; CUDA or TensorRT execution providers where installed.

The provider asked for must be the one in use: ONNX Runtime's silent fallback to CPU is
turned into an error.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hypermm_edge.engines.base import Backend, Engine, ShapeRange
from hypermm_edge.errors import EngineError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


class OnnxRuntimeEngine(Engine):
    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())


class OnnxRuntimeBackend(Backend):
    name: ClassVar[str] = "onnxruntime"
    engine_suffix: ClassVar[str] = ".onnx"
    engine_is_onnx: ClassVar[bool] = True
    priority: ClassVar[int] = 10

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError:
            return False, "onnxruntime is not installed (pip install 'hypermm-edge[ort]')"
        return True, f"onnxruntime {ort.__version__} with {', '.join(ort.get_available_providers())}"

    @property
    def device(self) -> str:
        return str(self.options.get("device") or self.default_device())

    @staticmethod
    def default_device() -> str:
        import onnxruntime as ort

        return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"

    def compile(self, onnx_path: Path, out_path: Path, shape_range: ShapeRange) -> Path:
        if onnx_path.resolve() != out_path.resolve():
            shutil.copyfile(onnx_path, out_path)
        return out_path

    def load(self, path: Path, manifest_device: dict[str, Any]) -> Engine:
        import onnxruntime as ort

        device = self.device
        if device not in PROVIDERS:
            raise EngineError(f"unknown ONNX Runtime device {device!r}; choose from {', '.join(PROVIDERS)}")
        wanted = PROVIDERS[device]
        if wanted not in ort.get_available_providers():
            raise EngineError(f"{wanted} is not available in this onnxruntime "
                              f"({', '.join(ort.get_available_providers())}); install onnxruntime-gpu "
                              "or choose --device cpu")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.options.get("allow_spinning") is False:  # idle threads yield the cores (fair A/B timing)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        threads = self.options.get("threads")
        if threads:
            opts.intra_op_num_threads = int(threads)
        providers = [wanted] if wanted == "CPUExecutionProvider" else [wanted, "CPUExecutionProvider"]
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types
            raise EngineError(f"ONNX Runtime could not load the engine: {exc}", path=path) from exc
        if session.get_providers()[0] != wanted:
            raise EngineError(f"asked for {wanted} but ONNX Runtime would run on {session.get_providers()}",
                              path=path)
        return OnnxRuntimeEngine(session)

    def environment(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__, "device": self.device}
