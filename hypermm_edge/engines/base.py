"""The backend interface and its registry (no if/elif over formats anywhere else)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hypermm_edge.errors import EngineError

# (min, opt, max) shapes of an engine's one input, from the manifest's profile.
ShapeRange = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


class Engine(ABC):
    """One loaded engine: a single input and a single output, fp32 numpy in and out."""

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray: ...

    @property
    @abstractmethod
    def providers(self) -> list[str]:
        """What actually executes this engine (e.g. ONNX Runtime providers in use)."""

    @property
    def device_memory_bytes(self) -> int | None:
        """GPU memory this engine holds, where the backend can tell; None on the CPU."""
        return None


class Backend(ABC):
    name: ClassVar[str]
    engine_suffix: ClassVar[str]
    engine_is_onnx: ClassVar[bool]  # True: the ONNX file is run as it is (no separate engine format)
    priority: ClassVar[int]  # higher is preferred by `auto`

    def __init__(self, **options: Any) -> None:
        self.options = options

    @classmethod
    @abstractmethod
    def availability(cls) -> tuple[bool, str]:
        """(usable here, why or why not)."""

    @abstractmethod
    def compile(self, onnx_path: Path, out_path: Path, shape_range: ShapeRange) -> Path:
        """Turn an ONNX file into this backend's engine file (may be the ONNX file itself)."""

    @abstractmethod
    def load(self, path: Path, manifest_device: dict[str, Any]) -> Engine: ...

    @abstractmethod
    def environment(self) -> dict[str, Any]:
        """Versions and device facts recorded in the manifest."""


# name -> "module:Class"; modules are imported only when the backend is asked for.
_REGISTRY: dict[str, str] = {
    "onnxruntime": "hypermm_edge.engines.onnxruntime_backend:OnnxRuntimeBackend",
    "tensorrt": "hypermm_edge.engines.tensorrt_backend:TensorRTBackend",
}


def register_backend(name: str, target: str) -> None:
    _REGISTRY[name] = target


def registered_backends() -> list[str]:
    return sorted(_REGISTRY)


def backend_class(name: str) -> type[Backend]:
    if name not in _REGISTRY:
        raise EngineError(f"unknown backend {name!r}; known: {', '.join(registered_backends())}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def get_backend(name: str, **options: Any) -> Backend:
    cls = backend_class(name)
    ok, why = cls.availability()
    if not ok:
        raise EngineError(f"backend {name} is not usable here: {why}")
    return cls(**options)


def auto_backend() -> tuple[str, str]:
    """The most preferred usable backend and a sentence saying why it was chosen."""
    reasons: list[str] = []
    ranked = sorted(registered_backends(), key=lambda n: -backend_class(n).priority)
    for name in ranked:
        ok, why = backend_class(name).availability()
        if ok:
            skipped = f" ({'; '.join(reasons)})" if reasons else ""
            return name, f"{name}: {why}{skipped}"
        reasons.append(f"{name} not usable: {why}")
    raise EngineError("no backend is usable: " + "; ".join(reasons))
