from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from hypermm_edge.readers.limits import DEFAULT_LIMITS


def predict(
    patient_dirs: Annotated[list[Path], typer.Argument(help="Patient folders (one per patient).")],
    engines: Annotated[Path, typer.Option("--engines", help="Engine directory from `build-engines`.")],
    output: Annotated[Path | None, typer.Option(help="Results file (JSON lines), written atomically.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per patient.")] = False,
    resume: Annotated[bool, typer.Option(help="Skip patients already recorded ok in --output.")] = False,
    cache: Annotated[Path | None, typer.Option(
        help="Feature cache folder: unchanged inputs skip their extractor (only new modalities and rho run).")]
    = None,
    max_voxels: Annotated[int, typer.Option(help="Largest volume accepted, checked from the header before reading.")]
    = DEFAULT_LIMITS.max_voxels,
    max_image_pixels: Annotated[int, typer.Option(help="Largest 2D image accepted (decompression-bomb guard).")]
    = DEFAULT_LIMITS.max_image_pixels,
) -> None:
    """Predict patients with whatever modalities each has.

    Exit codes: 0 every patient ok; 1 some patients failed (each has status 'error' with a
    category and the file at fault); 2 usage or configuration error.
    """
    from hypermm_edge.readers.limits import ReadLimits
    from hypermm_edge.runtime.batch import predict_many
    from hypermm_edge.runtime.feature_cache import FeatureCache
    from hypermm_edge.runtime.predictor import Predictor
    from hypermm_edge.runtime.results import ResultsFile

    out = Console(stderr=as_json)
    if resume and output is None:
        raise typer.BadParameter("--resume needs --output")
    results = ResultsFile(output, resume) if output else None
    predictor = Predictor(engines)
    feature_cache = None
    if cache:
        feature_cache = FeatureCache(cache, predictor.engine_sha256, asdict(predictor.config.preprocess))
    skip = {k for k in results.records if results.done(k)} if results else set()
    todo = [p for p in patient_dirs if str(p.resolve()) not in skip]
    if skip:
        out.print(f"resuming: {len(patient_dirs) - len(todo)} patients already done")
    records = []
    limits = ReadLimits(max_voxels=max_voxels, max_image_pixels=max_image_pixels)
    try:
        with Progress(console=Console(stderr=True), transient=True, disable=as_json) as progress:
            task = progress.add_task("predicting", total=len(todo))
            for record in predict_many(predictor, todo, cache=feature_cache, limits=limits):
                records.append(record)
                if results:
                    results.add(record)
                if as_json:
                    typer.echo(json.dumps(record, sort_keys=True))
                progress.advance(task)
    finally:  # also on Ctrl-C: what was computed is kept
        if results:
            results.flush()
    failed = [r for r in records if r["status"] != "ok"]
    if not as_json:
        labels = predictor.config.labels
        table = Table(title=f"predictions ({predictor.manifest.backend}, {predictor.manifest.precision_summary()})")
        table.add_column("patient", overflow="fold")
        table.add_column("status")
        table.add_column("prediction")
        table.add_column(f"P({labels[1]})" if len(labels) == 2 else "probabilities", overflow="fold")
        table.add_column("modalities", overflow="fold")
        table.add_column("missing / error", overflow="fold")
        table.add_column("ms", justify="right")
        for r in records:
            name = escape(r["patient"])
            if r["status"] == "ok":
                prob = r.get("probability")
                prob_text = f"{prob:.3f}" if prob is not None else json.dumps(r["probabilities"])
                table.add_row(name, "ok", escape(r["prediction"]), prob_text, escape(",".join(r["modalities"])),
                              escape(",".join(r["missing"])) or "-", f"{r['timings_ms']['total']:.1f}")
            else:
                e = r["error"]
                table.add_row(name, "[red]error[/]", "", "", "", escape(f"[{e['category']}] {e['message']}"), "")
        out.print(table)
        out.print(f"{len(records) - len(failed)} ok, {len(failed)} failed"
                  + (f"; results in {output}" if output else ""))
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
