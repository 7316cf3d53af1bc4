from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table


def demo(
    workdir: Annotated[Path, typer.Option(help="Where the cohort, checkpoint and engines go.")] = Path("demo-run"),
    patients: Annotated[int, typer.Option(help="Synthetic patients.")] = 48,
    seed: Annotated[int, typer.Option(help="Seed for data, split and training.")] = 0,
) -> None:
    """Synthesise a cohort, train, build engines, predict held-out patients, report metrics."""
    import json
    import time

    from hypermm_edge.config import ArchConfig, ModalitySpec, ModelConfig, PreprocessConfig
    from hypermm_edge.data.cohort import read_cohort
    from hypermm_edge.data.synth import SynthSpec, make_synthetic_cohort
    from hypermm_edge.engines.base import auto_backend
    from hypermm_edge.export.build import BuildRequest, build_engines, parse_precision
    from hypermm_edge.manifest import Profile
    from hypermm_edge.metrics import classification_metrics
    from hypermm_edge.runtime.batch import predict_many
    from hypermm_edge.runtime.predictor import Predictor
    from hypermm_edge.train.loop import TrainConfig, train

    console = Console()
    data = workdir / "cohort"
    t0 = time.perf_counter()
    console.rule("1. synthetic cohort")
    make_synthetic_cohort(data, SynthSpec(patients=patients, size=32, missing_rate=0.25, seed=seed))
    console.print(f"{patients} patients (MRI-like and PET-like 32^3 volumes, 25% of modalities missing) in {data}")

    console.rule("2. training (random VGG11 trunk: demo only; use --backbone-weights for real data)")
    config = ModelConfig(modalities=(ModalitySpec("MRI", 0), ModalitySpec("PET", 1)), labels=("CN", "AD"),
                         preprocess=PreprocessConfig(crop=32, resize_shorter=32),
                         arch=ArchConfig(classifier_hidden=64, rho_hidden=(64,)))
    ckpt = workdir / "model.safetensors"
    _, report = train(data, ckpt, config, TrainConfig(seed=seed, lr=3e-4, phase2_lr=1e-3, phase1_epochs=8,
                                                               phase2_epochs=150, patience=20))
    console.print(f"phase-1 {report.seconds_per_epoch['phase1']:.2f} s/epoch, phase-2 "
                  f"{report.seconds_per_epoch['phase2'] * 1e3:.1f} ms/epoch (cached trunk features)")

    console.rule("3. engines")
    backend, why = auto_backend()
    console.print(f"backend: {why}")
    engines = workdir / "engines"
    build_engines(BuildRequest(ckpt, engines, backend, parse_precision("fp32"),
                               profile=Profile(max_batch=4, opt_batch=1, max_slices=32, opt_slices=32)))

    console.rule("4. predictions on held-out patients (torch-free runtime)")
    patients_list, labels = read_cohort(data, config.labels)
    by_name = {p.patient: p for p in patients_list}
    test = [by_name[n] for n in report.split["test"]]
    predictor = Predictor(engines)
    records = list(predict_many(predictor, [p.folder for p in test]))
    table = Table()
    for col in ("patient", "truth", "prediction", "P(AD)", "modalities", "missing", "ms"):
        table.add_column(col)
    for p, r in zip(test, records, strict=True):
        table.add_row(p.patient, labels[p.label], r["prediction"], f"{r['probability']:.3f}",
                      ",".join(r["modalities"]), ",".join(r["missing"]) or "-", f"{r['timings_ms']['total']:.1f}")
    console.print(table)
    metrics = classification_metrics(np.array([p.label for p in test]), np.array([r["probability"] for r in records]))
    console.print("test metrics: " + json.dumps({k: round(v, 3) for k, v in metrics.items()}))
    stages = ("read", "preprocess", "trunk", "head", "aggregate", "rho", "total")
    med = {s: float(np.median([r["timings_ms"].get(s, 0.0) for r in records])) for s in stages}
    console.print("median latency per patient (ms): " + ", ".join(f"{s} {v:.2f}" for s, v in med.items()))

    console.rule("5. int8 trunk (explicit Q/DQ, calibrated on the training patients) vs fp32")
    calibration = workdir / "calibration"
    calibration.mkdir(exist_ok=True)
    for name in report.split["train"]:
        link = calibration / name
        if not link.exists():
            link.symlink_to(by_name[name].folder.resolve(), target_is_directory=True)
    engines_int8 = workdir / "engines-int8"
    build_engines(BuildRequest(ckpt, engines_int8, backend, parse_precision("trunk=int8"), calibration,
                               calibration_inputs=16,
                               profile=Profile(max_batch=4, opt_batch=1, max_slices=32, opt_slices=32)))
    records8 = list(predict_many(Predictor(engines_int8), [p.folder for p in test]))
    diffs = [abs(a["probability"] - b["probability"]) for a, b in zip(records, records8, strict=True)]
    agree = sum(a["prediction"] == b["prediction"] for a, b in zip(records, records8, strict=True))
    t32 = float(np.median([r["timings_ms"]["trunk"] for r in records]))
    t8 = float(np.median([r["timings_ms"]["trunk"] for r in records8]))
    console.print(f"decisions agree on {agree}/{len(test)} test patients; max |P(AD) fp32 - int8| = "
                  f"{max(diffs):.4f}; median trunk {t32:.2f} ms (fp32) vs {t8:.2f} ms (int8)")
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; artefacts in {workdir}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
