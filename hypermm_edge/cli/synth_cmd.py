from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the cohort into.")],
    patients: Annotated[int, typer.Option(min=2, help="Number of patients (classes alternate).")] = 40,
    missing_rate: Annotated[float, typer.Option(min=0.0, max=0.95, help="Chance each modality is absent.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    size: Annotated[int, typer.Option(min=8, max=512, help="Volume edge length in voxels.")] = 32,
    histology: Annotated[bool, typer.Option(help="Also write HISTO/ image sets at 40x..400x.")] = False,
) -> None:
    """Write a deterministic synthetic two-class cohort (labels.csv + patient folders)."""
    from hypermm_edge.data.synth import SynthSpec, make_synthetic_cohort

    make_synthetic_cohort(out_dir, SynthSpec(patients, size, missing_rate, seed, histology))
    typer.echo(f"wrote {patients} patients to {out_dir}")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
