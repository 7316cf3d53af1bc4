"""TensorRT (10.x and 11.x) with pycuda: strongly typed builds, one profile, a timing cache.

Precision comes from the ONNX graph (fp16 weights, or Q/DQ for int8): TensorRT 11 has no
FP16/INT8 builder flags, and a strongly typed network is valid on both majors.
Running uses the tensor-address API and execute_async_v3 on one stream, with device buffers
allocated once at the profile's maximum and page-locked host buffers.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hypermm_edge.engines.base import Backend, Engine, ShapeRange
from hypermm_edge.errors import EngineError

log = logging.getLogger(__name__)

try:  # imported here, but this module itself is only imported when TensorRT is asked for
    import tensorrt as trt

    # tensorrt-stubs alone leaves an empty namespace package named tensorrt
    _IMPORT_ERROR = "" if hasattr(trt, "Builder") else "only type stubs of tensorrt are installed"
except (ImportError, OSError) as exc:  # OSError: bindings present, native libraries missing
    _IMPORT_ERROR = f"tensorrt cannot be imported ({exc})"

TIMING_CACHE = "timing.cache"
WORKSPACE_BYTES = 1 << 30


def _cuda() -> Any:
    """pycuda's driver module with the device's primary context current (what TensorRT uses)."""
    import pycuda.autoprimaryctx  # noqa: F401
    import pycuda.driver as cuda

    return cuda


def gpu_facts() -> dict[str, Any]:
    cuda = _cuda()
    dev = cuda.Device(0)
    major, minor = dev.compute_capability()
    return {"gpu": dev.name(), "compute_capability": f"{major}.{minor}", "machine": platform.machine()}


def _shape(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


class _Logger(trt.ILogger if not _IMPORT_ERROR else object):  # type: ignore[misc]
    """Routes TensorRT's messages to Python logging and keeps the errors for our messages."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
            self.errors.append(msg)
            log.error("TensorRT: %s", msg)
        elif severity == trt.ILogger.Severity.WARNING:
            log.warning("TensorRT: %s", msg)
        else:
            log.debug("TensorRT: %s", msg)


class TensorRTEngine(Engine):
    """One deserialized engine with its context, stream and buffers (allocated once)."""

    def __init__(self, engine: trt.ICudaEngine, runtime: trt.Runtime) -> None:
        self._cuda = cuda = _cuda()
        self._runtime = runtime  # keep alive as long as the engine
        self.engine = engine
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"expected one input and one output, got {inputs} and {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.stream = cuda.Stream()
        max_in = _shape(engine.get_tensor_profile_shape(self.input_name, 0)[2])
        if not self.context.set_input_shape(self.input_name, trt.Dims(list(max_in))):
            raise EngineError(f"profile maximum {max_in} rejected by the engine")
        max_out = _shape(self.context.get_tensor_shape(self.output_name))
        self.host_in = cuda.pagelocked_empty(int(np.prod(max_in)), np.float32)
        self.host_out = cuda.pagelocked_empty(int(np.prod(max_out)), np.float32)
        self.dev_in = cuda.mem_alloc(self.host_in.nbytes)
        self.dev_out = cuda.mem_alloc(self.host_out.nbytes)
        self.context.set_tensor_address(self.input_name, int(self.dev_in))
        self.context.set_tensor_address(self.output_name, int(self.dev_out))
        self.max_input = max_in

    def run(self, x: np.ndarray) -> np.ndarray:
        cuda = self._cuda
        if x.ndim != len(self.max_input) or any(a > b for a, b in zip(x.shape, self.max_input, strict=True)):
            raise EngineError(f"input {x.shape} exceeds the engine's profile maximum {self.max_input}")
        if not self.context.set_input_shape(self.input_name, trt.Dims(list(x.shape))):
            raise EngineError(f"engine rejected input shape {x.shape}")
        n_in = x.size
        self.host_in[:n_in] = np.ascontiguousarray(x, dtype=np.float32).ravel()
        cuda.memcpy_htod_async(self.dev_in, self.host_in[:n_in], self.stream)
        if not self.context.execute_async_v3(self.stream.handle):
            raise EngineError("TensorRT enqueue failed")
        out_shape = _shape(self.context.get_tensor_shape(self.output_name))
        n_out = int(np.prod(out_shape))
        cuda.memcpy_dtoh_async(self.host_out[:n_out], self.dev_out, self.stream)
        self.stream.synchronize()
        return self.host_out[:n_out].reshape(out_shape).copy()

    @property
    def providers(self) -> list[str]:
        return [f"TensorRT {trt.__version__}"]

    @property
    def device_memory_bytes(self) -> int | None:
        """Execution-context scratch memory plus this engine's I/O buffers."""
        return int(self.engine.device_memory_size_v2) + self.host_in.nbytes + self.host_out.nbytes


class TensorRTBackend(Backend):
    name: ClassVar[str] = "tensorrt"
    engine_suffix: ClassVar[str] = ".plan"
    engine_is_onnx: ClassVar[bool] = False
    priority: ClassVar[int] = 20

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        if _IMPORT_ERROR:
            return False, _IMPORT_ERROR
        try:
            facts = gpu_facts()
        except Exception as exc:  # pycuda missing, no driver, no GPU
            return False, f"TensorRT {trt.__version__} present but no usable GPU through pycuda ({exc})"
        return True, f"TensorRT {trt.__version__} on {facts['gpu']} (sm {facts['compute_capability']})"

    def compile(self, onnx_path: Path, out_path: Path, shape_range: ShapeRange) -> Path:
        logger = _Logger()
        builder = trt.Builder(logger)
        # Strongly typed: valid on 10.x (opt-in) and 11.x (always on, flag ignored).
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = [parser.get_error(i).desc() for i in range(parser.num_errors)]
            raise EngineError(f"TensorRT could not parse the ONNX graph: {'; '.join(errors)}", path=onnx_path)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.options.get("workspace",
                                                                                         WORKSPACE_BYTES)))
        profile = builder.create_optimization_profile()
        input_name = network.get_input(0).name
        lo, opt, hi = (trt.Dims(list(s)) for s in shape_range)
        profile.set_shape(input_name, lo, opt, hi)
        if config.add_optimization_profile(profile) < 0:
            raise EngineError(f"invalid optimisation profile {shape_range} for {input_name}", path=onnx_path)
        cache_path = out_path.parent / TIMING_CACHE
        cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineError(f"TensorRT build failed: {'; '.join(logger.errors) or 'see log'}", path=onnx_path)
        out_path.write_bytes(bytes(memoryview(plan)))
        cache_path.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
        return out_path

    def load(self, path: Path, manifest_device: dict[str, Any]) -> Engine:
        here = self.environment()
        for key in ("tensorrt", "gpu", "compute_capability"):
            if manifest_device.get(key) != here.get(key):
                raise EngineError(
                    f"engine built for {key}={manifest_device.get(key)!r} but this machine has {here.get(key)!r}; "
                    "TensorRT engines are tied to one TensorRT version and GPU. Rebuild them here with "
                    "`hypermm-edge build-engines CHECKPOINT --backend tensorrt --out ENGINE_DIR`", path=path)
        logger = _Logger()
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise EngineError(f"TensorRT could not deserialize the engine: {'; '.join(logger.errors)}", path=path)
        return TensorRTEngine(engine, runtime)

    def environment(self) -> dict[str, Any]:
        return {"tensorrt": trt.__version__, **gpu_facts()}
