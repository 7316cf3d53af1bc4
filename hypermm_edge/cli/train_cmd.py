from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


class AggregationChoice(str, Enum):
    mean = "mean"
    sum = "sum"
    max = "max"


def train(
    data_dir: Annotated[Path, typer.Argument(help="Cohort folder: labels.csv + one folder per patient.")],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint to write (.safetensors).")],
    modalities: Annotated[str | None, typer.Option(
        help="NAME[:kind] in id order, e.g. 'PET,MRI' or 'MRI,HISTO:images'. Default: found in the data.")] = None,
    labels: Annotated[str | None, typer.Option(
        help="Label names in class order, e.g. 'CN,AD' (binary: the second is the positive class). "
             "Default: sorted names from labels.csv.")] = None,
    size: Annotated[int, typer.Option(help="Input crop size in pixels (a multiple of 32).")] = 224,
    resize: Annotated[int | None, typer.Option(help="Shorter side before cropping. Default: size*256/224.")] = None,
    aggregation: Annotated[AggregationChoice, typer.Option(help="Set aggregation.")] = AggregationChoice.mean,
    rho_hidden: Annotated[str, typer.Option(help="rho hidden sizes, e.g. '512' or '1024,512,256'.")] = "512",
    classifier_hidden: Annotated[int, typer.Option(help="Phase-1 classifier hidden size.")] = 512,
    epochs1: Annotated[int, typer.Option(help="Phase-1 epochs (max).")] = 50,
    epochs2: Annotated[int, typer.Option(help="Phase-2 epochs (max).")] = 100,
    patience: Annotated[int, typer.Option(help="Early-stopping patience in epochs.")] = 10,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-4,
    lr2: Annotated[float | None, typer.Option(help="Phase-2 (rho) learning rate. Default: --lr.")] = None,
    weight_decay: Annotated[float, typer.Option(help="Adam weight decay.")] = 5e-4,
    seed: Annotated[int, typer.Option(help="Seed for split, init and shuffling.")] = 0,
    end_to_end: Annotated[bool, typer.Option("--end-to-end", help="Train phi and rho jointly, no phase 1.")]
    = False,
    feature_cache: Annotated[bool, typer.Option(help="Compute frozen-trunk features once (much faster).")]
    = True,
    backbone_weights: Annotated[str | None, typer.Option(
        help="'imagenet' (download), a path to torchvision vgg11 weights, or omit for random (demo only).")] = None,
) -> None:
    """Train HyperMM: phase 1 (phi on single inputs) then phase 2 (rho on patients)."""
    from hypermm_edge.config import ArchConfig, ModalitySpec, ModelConfig, PreprocessConfig
    from hypermm_edge.data.cohort import discover_modalities, read_cohort
    from hypermm_edge.train.loop import TrainConfig
    from hypermm_edge.train.loop import train as run_training

    console = Console()
    if modalities:
        from hypermm_edge.config import parse_modalities

        specs = parse_modalities(modalities, discover_modalities(data_dir))
    else:
        specs = tuple(ModalitySpec(n, i, k) for i, (n, k) in enumerate(discover_modalities(data_dir).items()))
    label_names = tuple(x.strip() for x in labels.split(",")) if labels else read_cohort(data_dir)[1]
    config = ModelConfig(
        modalities=specs, labels=label_names, aggregation=aggregation.value,
        preprocess=PreprocessConfig(crop=size, resize_shorter=resize or round(size * 256 / 224)),
        arch=ArchConfig(classifier_hidden=classifier_hidden,
                        rho_hidden=tuple(int(h) for h in rho_hidden.split(","))),
    )
    cfg = TrainConfig(seed=seed, lr=lr, phase2_lr=lr2, weight_decay=weight_decay, phase1_epochs=epochs1,
                      phase2_epochs=epochs2, patience=patience, end_to_end=end_to_end, feature_cache=feature_cache,
                      backbone_weights=backbone_weights)
    positive = f" (positive class: {label_names[1]}; --labels sets the order)" if len(label_names) == 2 else ""
    console.print(f"modalities: {', '.join(f'{m.name}({m.kind}, id {m.id})' for m in specs)}; "
                  f"labels: {', '.join(label_names)}{positive}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console) as progress:
        tasks: dict[str, TaskID] = {}
        feats = progress.add_task("features", total=None, status="")

        def on_patient() -> None:
            progress.advance(feats)

        def on_epoch(phase: str, epoch: int, total: int, row: dict) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total, status="")
            status = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.endswith(("loss", "auc")))
            progress.update(tasks[phase], completed=epoch, status=status)

        _, report = run_training(data_dir, out, config, cfg, on_epoch=on_epoch, on_patient=on_patient)
    table = Table(title="test metrics (held-out patients)")
    for k in report.test_metrics:
        table.add_column(k)
    table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in report.test_metrics.values()))
    console.print(table)
    console.print(f"seconds per epoch: {json.dumps({k: round(v, 3) for k, v in report.seconds_per_epoch.items()})}"
                  f"; trunk features: {report.feature_seconds:.1f} s")
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
