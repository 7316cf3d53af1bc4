from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


class BackendChoice(str, Enum):
    auto = "auto"
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"


class DeviceChoice(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


def build_engines(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `train` or `import-reference`.")],
    out: Annotated[Path, typer.Option("--out", help="Engine directory to write.")],
    backend: Annotated[BackendChoice, typer.Option(help="auto: TensorRT where usable, else ONNX Runtime.")]
    = BackendChoice.auto,
    precision: Annotated[str, typer.Option(
        help="fp32, fp16, int8 (trunk), or per part: 'trunk=int8,head=fp32,rho=fp32'.")] = "fp32",
    calibration_data: Annotated[Path | None, typer.Option(help="Folder of patient folders for int8.")] = None,
    calibration_inputs: Annotated[int, typer.Option(help="Inputs used for int8 calibration.")] = 32,
    max_slices: Annotated[int, typer.Option(help="Most slices per trunk call (longer volumes are chunked).")]
    = 64,
    opt_slices: Annotated[int, typer.Option(help="Slices per call TensorRT optimises for.")] = 32,
    max_batch: Annotated[int, typer.Option(help="Most inputs (or 2D images) per trunk call.")] = 16,
    opt_batch: Annotated[int, typer.Option(help="Inputs per call TensorRT optimises for.")] = 1,
    device: Annotated[DeviceChoice | None, typer.Option(help="ONNX Runtime provider (default: CUDA if "
                                                              "installed, else CPU).")] = None,
) -> None:
    """Export a checkpoint to ONNX and compile it: shared trunk, a head per modality, rho."""
    from hypermm_edge.engines.base import auto_backend
    from hypermm_edge.export.build import BuildRequest, parse_precision
    from hypermm_edge.export.build import build_engines as do_build
    from hypermm_edge.manifest import Profile

    console = Console()
    name = backend.value
    if name == "auto":
        name, why = auto_backend()
        console.print(f"backend: {why}")
    options = {"device": device.value} if device else {}
    req = BuildRequest(checkpoint, out, name, parse_precision(precision), calibration_data, calibration_inputs,
                       Profile(max_batch=max_batch, opt_batch=opt_batch, max_slices=max_slices,
                               opt_slices=opt_slices), options)
    with console.status("building") as status:
        def progress(message: str) -> None:
            status.update(message)
            console.print(f"  {message}")

        manifest = do_build(req, progress=progress)
    console.print(f"[green]built[/] {len(manifest.parts)} engines with {manifest.backend} "
                  f"({manifest.precision_summary()}) in {out}")


def register(app: typer.Typer) -> None:
    app.command("build-engines")(build_engines)
