"""Latency sweep: slice count x precision x backend, against the machine's GEMM rate and
(optionally) PyTorch eager. Writes results.json, results.md and latency.png to --out.

    python benchmarks/sweep.py --out benchmarks/results                  # 224x224, 16/64/160 slices
    python benchmarks/sweep.py --size 32 --slices 2,4 --iterations 1 --out /tmp/sweep   # tiny (CI)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def _checkpoint(size: int, out: Path) -> Path:
    import torch

    from hypermm_edge.config import ModalitySpec, ModelConfig, PreprocessConfig
    from hypermm_edge.model.checkpoint import save_checkpoint
    from hypermm_edge.model.hypermm import HyperMM

    torch.manual_seed(0)
    cfg = ModelConfig(modalities=(ModalitySpec("PET", 0), ModalitySpec("MRI", 1)),
                      preprocess=PreprocessConfig(crop=size, resize_shorter=round(size * 256 / 224)))
    return save_checkpoint(HyperMM(cfg), out / "random.safetensors")


def main(argv: list[str] | None = None) -> dict:
    from hypermm_edge.bench.flops import gemm_gflops, trunk_macs_per_slice
    from hypermm_edge.bench.runner import BenchRequest, run_bench, write_synthetic_patient
    from hypermm_edge.checkpoint_meta import read_checkpoint_config
    from hypermm_edge.engines.base import backend_class
    from hypermm_edge.export.build import BuildRequest, build_engines, parse_precision
    from hypermm_edge.manifest import Profile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, help="default: a random-weight model (timing does not care)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--slices", default="16,64,160")
    ap.add_argument("--precisions", default="fp32,fp16,int8")
    ap.add_argument("--backends", default="onnxruntime,tensorrt")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--compare-max-slices", type=int, default=64,
                    help="also time PyTorch eager up to this many slices (0: never)")
    ap.add_argument("--predict-slices", type=lambda t: [int(x) for x in t.split(",") if x], default=[64],
                    help="slice counts at which `predict` is also timed end to end on 3 patients")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    out = args.out
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    ckpt = args.checkpoint or _checkpoint(args.size, work)
    slice_counts = [int(s) for s in args.slices.split(",")]
    gemm = gemm_gflops(1024 if args.size < 128 else 2048)
    macs = trunk_macs_per_slice(args.size)
    calib = work / "calibration"
    if not calib.exists():
        config = read_checkpoint_config(ckpt)[0]
        for i in range(2):
            write_synthetic_patient(calib / f"c{i}", config, 4, args.size)
    rows, skipped = [], []
    for backend in args.backends.split(","):
        ok, why = backend_class(backend).availability()
        if not ok:
            skipped.append(f"{backend}: {why}")
            continue
        for precision in args.precisions.split(","):
            engines = work / f"{backend}-{precision}"
            build_engines(BuildRequest(ckpt, engines, backend, parse_precision(precision), calibration_data=calib,
                                       calibration_inputs=4,
                                       profile=Profile(max_batch=4, opt_batch=1, max_slices=max(slice_counts),
                                                       opt_slices=min(max(slice_counts), 64))))
            for n in slice_counts:
                compare = ckpt if n <= args.compare_max_slices else None
                result = run_bench(BenchRequest(engines, None, n, args.size, args.warmup, args.iterations,
                                                compare, all_subsets=False))
                full = result["subsets"][-1]
                trunk_ms = full["stages_ms"]["trunk"]["median"]
                total = full["stages_ms"]["total"]
                io_ms = full["stages_ms"]["read"]["median"] + full["stages_ms"]["preprocess"]["median"]
                row = {
                    "backend": backend, "providers": result["providers"], "precision": precision,
                    "slices_per_volume": n, "volumes": len(full["modalities"]), "slices": full["slices"],
                    "total_ms": total["median"], "total_p90_ms": total["p90"], "trunk_ms": trunk_ms,
                    "read_preprocess_ms": io_ms,
                    "glue_fraction": (total["median"] - trunk_ms - full["stages_ms"]["head"]["median"]
                                      - full["stages_ms"]["rho"]["median"]) / total["median"],
                    "trunk_gflops": 2 * macs * full["slices"] / (trunk_ms / 1e3) / 1e9,
                    "slices_per_s": full["throughput"]["slices_per_s"],
                    "peak_host_memory_mib": result["peak_host_memory_mib"],
                }
                row["trunk_vs_gemm"] = row["trunk_gflops"] / gemm
                if "torch_eager_ms" in full:
                    row["torch_eager_ms"] = full["torch_eager_ms"]["median"]
                    row["speedup_vs_torch"] = full["speedup_vs_torch"]
                if n in args.predict_slices:
                    row.update(predict_end_to_end(engines, n, args.size, work))
                rows.append(row)
                print(json.dumps(row), flush=True)
    fp32 = {(r["backend"], r["slices_per_volume"]): r for r in rows if r["precision"] == "fp32"}
    for r in rows:
        base = fp32.get((r["backend"], r["slices_per_volume"]))
        if base:
            r["speedup_vs_fp32"] = base["total_ms"] / r["total_ms"]
    report = {
        "schema": "hypermm-edge-sweep/1", "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/sweep.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": _machine(), "input_size": args.size, "trunk_gmac_per_slice": macs / 1e9,
        "gemm_gflops": gemm, "rows": rows, "skipped": skipped,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text(markdown(report))
    plot(report, out / "latency.png")
    return report


def predict_end_to_end(engines: Path, slices: int, size: int, work: Path) -> dict:
    """Wall time of `predict` over 3 patients (reads prefetched while engines run), and the
    share of it that is not engine compute: reading, preprocessing and glue."""
    import time

    from hypermm_edge.bench.runner import write_synthetic_patient
    from hypermm_edge.runtime.batch import predict_many
    from hypermm_edge.runtime.predictor import Predictor

    predictor = Predictor(engines)
    folders = [write_synthetic_patient(work / f"e2e-{slices}-{i}", predictor.config, slices, size) for i in range(3)]
    list(predict_many(predictor, folders[:1]))  # warm-up: engines opened, caches warm
    t0 = time.perf_counter()
    records = list(predict_many(predictor, folders))
    wall = (time.perf_counter() - t0) * 1e3
    compute = sum(r["timings_ms"][k] for r in records for k in ("trunk", "head", "aggregate", "rho"))
    return {"predict_ms_per_patient": wall / len(folders), "predict_overhead_fraction": (wall - compute) / wall}


def markdown(report: dict) -> str:
    lines = [f"Sweep of {report['date']} on {report['machine']['cpu']} ({report['machine']['cores']} cores); "
             f"{report['input_size']}x{report['input_size']} slices, trunk {report['trunk_gmac_per_slice']:.2f} "
             f"GMAC/slice; numpy fp32 GEMM {report['gemm_gflops']:.0f} GFLOP/s.", "",
             f"Command: `{report['command']}`", "",
             "| backend | precision | slices/volume x volumes | total ms (median) | trunk ms | trunk GFLOP/s "
             "| % of GEMM | vs fp32 | PyTorch eager ms | vs eager | read+prep ms | predict overhead |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        eager = f"{r['torch_eager_ms']:.0f}" if "torch_eager_ms" in r else "-"
        vs = f"{r['speedup_vs_torch']:.2f}x" if "speedup_vs_torch" in r else "-"
        overhead = f"{100 * r['predict_overhead_fraction']:.1f}%" if "predict_overhead_fraction" in r else "-"
        lines.append(f"| {r['backend']} | {r['precision']} | {r['slices_per_volume']} x {r['volumes']} "
                     f"| {r['total_ms']:.1f} | {r['trunk_ms']:.1f} | {r['trunk_gflops']:.1f} "
                     f"| {100 * r['trunk_vs_gemm']:.0f}% | {r.get('speedup_vs_fp32', 1):.2f}x | {eager} | {vs} "
                     f"| {r['read_preprocess_ms']:.1f} | {overhead} |")
    if report["skipped"]:
        lines += ["", "Not run here: " + "; ".join(report["skipped"])]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    series: dict[tuple, list] = {}
    for r in report["rows"]:
        series.setdefault((r["backend"], r["precision"]), []).append((r["slices_per_volume"], r["total_ms"]))
    for (backend, precision), pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{backend} {precision}")
    ax.set_xlabel("slices per volume (2 volumes per patient)")
    ax.set_ylabel("median ms per patient")
    ax.set_title(f"{report['input_size']}px, {report['machine']['cores']} cores, {report['date']}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
