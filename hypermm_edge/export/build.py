"""Checkpoint -> engine directory: ONNX graphs at the asked precision, compiled by a backend,
described by one manifest."""

from __future__ import annotations

import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from hypermm_edge import __version__
from hypermm_edge.config import TRUNK_CHANNELS
from hypermm_edge.engines.base import ShapeRange, get_backend
from hypermm_edge.errors import ConfigError
from hypermm_edge.export import onnx_graphs
from hypermm_edge.export.quantize import calibration_batches, quantize_trunk
from hypermm_edge.export.weights import load_export_weights
from hypermm_edge.manifest import PRECISIONS, Manifest, PartSpec, Profile, sha256_file

PART_GROUPS = ("trunk", "head", "rho")
INT8_PARTS = ("trunk",)


def parse_precision(text: str) -> dict[str, str]:
    """`fp16` (trunk only; heads and rho stay fp32) or `trunk=int8,head=fp32,rho=fp16`."""
    result = {"trunk": "fp32", "head": "fp32", "rho": "fp32"}
    for token in (t.strip() for t in text.split(",") if t.strip()):
        part, sep, value = token.partition("=")
        if not sep:
            part, value = "trunk", token
        if part not in PART_GROUPS:
            raise ConfigError(f"unknown part {part!r} in --precision; parts are {', '.join(PART_GROUPS)}")
        if value not in PRECISIONS:
            raise ConfigError(f"unknown precision {value!r}; choose from {', '.join(PRECISIONS)}")
        if value == "int8" and part not in INT8_PARTS:
            raise ConfigError(f"int8 is supported for the trunk only, not {part!r} (they are tiny; use fp16)")
        result[part] = value
    return result


@dataclass
class BuildRequest:
    checkpoint: Path
    out_dir: Path
    backend: str = "onnxruntime"
    precision: dict[str, str] | None = None
    calibration_data: Path | None = None
    calibration_inputs: int = 32
    profile: Profile | None = None
    backend_options: dict | None = None


def _tool_versions() -> dict[str, str]:
    versions = {"hypermm_edge": __version__, "onnx": onnx.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def build_engines(req: BuildRequest, progress: Callable[[str], None] = lambda _: None) -> Manifest:
    precision = req.precision or parse_precision("fp32")
    profile = req.profile or Profile()
    profile.validate()
    backend = get_backend(req.backend, **(req.backend_options or {}))
    weights = load_export_weights(req.checkpoint)
    config = weights.config
    size, hw, dim = config.input_size, config.feature_hw, config.feature_dim
    out = Path(req.out_dir)
    onnx_dir = out / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)

    p = profile
    graphs: dict[str, tuple[str, ShapeRange, Callable[[bool], onnx.ModelProto]]] = {
        "trunk": ("trunk", ((1, 1, 3, size, size), (p.opt_batch, p.opt_slices, 3, size, size),
                            (p.max_batch, p.max_slices, 3, size, size)),
                  lambda fp16: onnx_graphs.trunk_graph(weights.trunk_convs(), size, fp16)),
        "rho": ("rho", ((1, dim), (1, dim), (p.max_batch, dim)),
                lambda fp16: onnx_graphs.rho_graph(weights.rho_layers(), fp16)),
    }
    def head_graph(name: str) -> Callable[[bool], onnx.ModelProto]:
        return lambda fp16: onnx_graphs.head_graph(*weights.head(name), hw, fp16)

    for m in config.modalities:
        graphs[Manifest.head_key(m.name)] = (
            "head", ((1, TRUNK_CHANNELS, hw, hw), (p.opt_batch, TRUNK_CHANNELS, hw, hw),
                     (p.max_batch, TRUNK_CHANNELS, hw, hw)), head_graph(m.name))

    parts: dict[str, PartSpec] = {}
    for key, (group, shape_range, make) in graphs.items():
        prec = precision[group]
        progress(f"{key}: exporting ONNX ({prec})")
        onnx_path = onnx_dir / f"{key}.{prec}.onnx"
        model = make(prec == "fp16")
        if prec == "int8":
            if req.calibration_data is None:
                raise ConfigError("int8 needs --calibration-data DIR: a folder of your own patient folders")
            fp32_path = onnx_dir / f"{key}.fp32.onnx"
            onnx.save(model, fp32_path)
            progress(f"{key}: calibrating int8 on {req.calibration_data}")
            batches = calibration_batches(req.calibration_data, config, req.calibration_inputs, profile.max_slices)
            quantize_trunk(fp32_path, onnx_path, batches)
            fp32_path.unlink()
            model = onnx.load(onnx_path)
        else:
            onnx.save(model, onnx_path)
        inputs, outputs = onnx_graphs.io_shapes(model)
        progress(f"{key}: compiling with {backend.name}")
        engine_path = out / f"{key}{backend.engine_suffix}"
        backend.compile(onnx_path, engine_path, shape_range)
        parts[key] = PartSpec(file=engine_path.name, onnx=str(onnx_path.relative_to(out)), precision=prec,
                              sha256=sha256_file(engine_path), onnx_sha256=sha256_file(onnx_path),
                              inputs=inputs, outputs=outputs)
    if backend.engine_is_onnx:
        shutil.rmtree(onnx_dir)  # the engines are the ONNX files themselves
        for part in parts.values():
            part.onnx = part.file
    env = backend.environment()
    manifest = Manifest(
        backend=backend.name, model=config.to_dict(), parts=parts, profile=profile,
        tools={**_tool_versions(), **{k: str(v) for k, v in env.items() if k in ("onnxruntime", "tensorrt")}},
        checkpoint_sha256=sha256_file(req.checkpoint), device=env, backend_options=dict(req.backend_options or {}),
    )
    manifest.save(out)
    progress(f"wrote {out / 'manifest.json'}")
    return manifest
