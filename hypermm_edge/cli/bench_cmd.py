from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def bench(
    engines: Annotated[Path, typer.Option("--engines", help="Engine directory.")],
    patient: Annotated[Path | None, typer.Option(help="A patient folder to time.")] = None,
    synthetic: Annotated[bool, typer.Option(help="Time a synthetic patient with every volume modality.")] = False,
    slices: Annotated[int, typer.Option(help="Slices per synthetic volume.")] = 64,
    size: Annotated[int | None, typer.Option(help="Synthetic slice size (default: the model's input size).")]
    = None,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.")] = 1,
    iterations: Annotated[int, typer.Option(help="Timed runs per modality subset.")] = 5,
    compare: Annotated[Path | None, typer.Option(help="Checkpoint: also time PyTorch eager, interleaved.")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full results as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of per-stage latency.")] = None,
) -> None:
    """Per-stage latency (min/median/p90/p99), throughput and memory, per modality subset."""
    from hypermm_edge.bench.runner import BenchRequest, print_report, run_bench, save_plot

    if (patient is None) == (not synthetic):
        raise typer.BadParameter("give exactly one of --patient DIR or --synthetic")
    result = run_bench(BenchRequest(engines, patient, slices, size, warmup, iterations, compare))
    print_report(result)
    if json_out:
        import json

        json_out.write_text(json.dumps(result, indent=2))
    if plot:
        save_plot(result, plot)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
