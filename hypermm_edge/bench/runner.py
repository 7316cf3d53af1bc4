"""`hypermm-edge bench`: time the runtime stage by stage on a real or synthetic patient.

PyTorch eager (with `compare`) runs the reference's way: the whole model per patient, the
hypernetwork evaluated at every call; its runs are interleaved with the engine runs so both
see the same machine state.
"""

from __future__ import annotations

import platform
import resource
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from hypermm_edge.config import ModelConfig
from hypermm_edge.readers.patient import read_patient
from hypermm_edge.runtime.predictor import Predictor

STAGES = ("read", "preprocess", "trunk", "head", "aggregate", "rho", "total")


@dataclass
class BenchRequest:
    engine_dir: Path
    patient: Path | None = None
    slices: int = 64
    size: int | None = None
    warmup: int = 1
    iterations: int = 5
    compare: Path | None = None
    all_subsets: bool = True  # False: only the full set of modalities present


def summarise(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"min": float(a.min()), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "n": int(a.size)}


def write_synthetic_patient(folder: Path, config: ModelConfig, slices: int, size: int) -> Path:
    """One random volume per volume modality of the model: timing does not depend on content."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for m in config.modalities:
        if m.kind == "volume":
            vol = rng.random((size, size, slices), dtype=np.float32)
            nib.save(nib.Nifti1Image(vol, np.eye(4)), str(folder / f"{m.name}.nii.gz"))
    return folder


def _torch_runner(checkpoint: Path) -> Any:
    import torch

    from hypermm_edge.model.checkpoint import load_checkpoint
    from hypermm_edge.model.hypermm import ModalityInput

    model = load_checkpoint(checkpoint)

    def run(patient_inputs: list) -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            model([ModalityInput(x.modality.name, torch.from_numpy(x.slices)) for x in patient_inputs])
        return (time.perf_counter() - t0) * 1e3

    return run, torch.__version__, torch.get_num_threads()


def run_bench(req: BenchRequest) -> dict[str, Any]:
    # Interleaved with PyTorch, ONNX Runtime's spinning worker threads would steal its cores.
    predictor = Predictor(req.engine_dir, allow_spinning=False) if req.compare else Predictor(req.engine_dir)
    manifest = predictor.manifest
    with tempfile.TemporaryDirectory() as tmp:
        folder = req.patient or write_synthetic_patient(Path(tmp) / "synthetic", manifest.config, req.slices,
                                                        req.size or manifest.config.input_size)
        torch_run = _torch_runner(req.compare) if req.compare else None
        first = read_patient(folder, predictor.config)
        names = [x.modality.name for x in first.inputs]
        sizes = range(1, len(names) + 1) if req.all_subsets else [len(names)]
        subsets = [s for k in sizes for s in combinations(names, k)]
        results = []
        for subset in subsets:
            stage_ms: dict[str, list[float]] = defaultdict(list)
            torch_ms: list[float] = []
            slices_total = 0
            for i in range(req.warmup + req.iterations):
                patient = read_patient(folder, predictor.config, only=set(subset))
                pred = predictor.predict(patient)
                slices_total = sum(int(np.prod(x.slices.shape[:2])) for x in patient.inputs)
                torch_time = torch_run[0](patient.inputs) if torch_run else None
                if i < req.warmup:
                    continue
                for s in STAGES:
                    stage_ms[s].append(pred.timings_ms.get(s, 0.0))
                if torch_time is not None:
                    torch_ms.append(torch_time)
            total = summarise(stage_ms["total"])
            row: dict[str, Any] = {
                "modalities": list(subset), "slices": slices_total,
                "stages_ms": {s: summarise(stage_ms[s]) for s in STAGES},
                "throughput": {"patients_per_s": 1e3 / total["median"],
                               "slices_per_s": slices_total * 1e3 / total["median"]},
                "read_ms_per_slice": float(np.median(stage_ms["read"])) / slices_total,
                "preprocess_ms_per_slice": float(np.median(stage_ms["preprocess"])) / slices_total,
            }
            if torch_ms:
                engine_compute = summarise([t - r - p for t, r, p in zip(stage_ms["total"], stage_ms["read"],
                                                                         stage_ms["preprocess"], strict=True)])
                row["torch_eager_ms"] = summarise(torch_ms)
                row["speedup_vs_torch"] = row["torch_eager_ms"]["median"] / engine_compute["median"]
            results.append(row)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "schema": "hypermm-edge-bench/1",
        "engine_dir": str(req.engine_dir), "backend": manifest.backend, "providers": predictor.providers,
        "precision": manifest.precision_summary(), "input_size": manifest.config.input_size,
        "patient": str(req.patient) if req.patient else f"synthetic ({req.slices} slices)",
        "warmup": req.warmup, "iterations": req.iterations,
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        "torch": {"version": torch_run[1], "threads": torch_run[2]} if torch_run else None,
        "peak_host_memory_mib": peak_kib / 1024,
        "device_memory_mib": None if predictor.device_memory_bytes is None else predictor.device_memory_bytes / 2**20,
        "subsets": results,
    }


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"backend {result['backend']} ({', '.join(result['providers'])}), {result['precision']}, "
                  f"{result['patient']}, peak host memory {result['peak_host_memory_mib']:.0f} MiB")
    for row in result["subsets"]:
        t = Table(title=f"{'+'.join(row['modalities'])}: {row['slices']} slices, "
                        f"{row['throughput']['slices_per_s']:.1f} slices/s")
        for col in ("stage", "min ms", "median ms", "p90 ms", "p99 ms"):
            t.add_column(col)
        for stage, s in row["stages_ms"].items():
            t.add_row(stage, f"{s['min']:.2f}", f"{s['median']:.2f}", f"{s['p90']:.2f}", f"{s['p99']:.2f}")
        if "torch_eager_ms" in row:
            s = row["torch_eager_ms"]
            t.add_row("torch eager", f"{s['min']:.2f}", f"{s['median']:.2f}", f"{s['p90']:.2f}", f"{s['p99']:.2f}")
        console.print(t)
        console.print(f"read {row['read_ms_per_slice']:.3f} ms/slice, preprocess "
                      f"{row['preprocess_ms_per_slice']:.3f} ms/slice")
        if "speedup_vs_torch" in row:
            console.print(f"engines vs PyTorch eager (compute only): {row['speedup_vs_torch']:.2f}x")


def save_plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["subsets"]
    labels = ["+".join(r["modalities"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = np.zeros(len(rows))
    for stage in STAGES[:-1]:
        vals = np.array([r["stages_ms"][stage]["median"] for r in rows])
        ax.bar(labels, vals, bottom=bottom, label=stage)
        bottom += vals
    ax.set_ylabel("median ms per patient")
    ax.set_title(f"{result['backend']} {result['precision']}, {result['patient']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
