from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def verify(
    checkpoint: Annotated[Path, typer.Argument(help="The checkpoint the engines were built from.")],
    patient_dirs: Annotated[list[Path], typer.Argument(help="Patient folders to compare on.")],
    engines: Annotated[Path, typer.Option("--engines", help="Engine directory.")],
) -> None:
    """Compare PyTorch and the engines for every non-empty subset of each patient's modalities.

    Exits 1 when a difference exceeds the bound of the engines' precision
    (fp32 1e-4, fp16 1e-2, int8 0.1 in probability)."""
    from hypermm_edge.manifest import Manifest
    from hypermm_edge.verify import precision_bound, verify_patients

    console = Console()
    precision, bound = precision_bound(Manifest.load(engines))
    checks = verify_patients(checkpoint, engines, patient_dirs)
    by_subset: dict[tuple[str, ...], list] = {}
    for c in checks:
        by_subset.setdefault(tuple(sorted(c.modalities)), []).append(c)
    table = Table(title=f"PyTorch vs engines ({precision}: bound {bound:g})")
    for col in ("modalities", "patients", "max |diff|", "decisions agree"):
        table.add_column(col)
    worst = 0.0
    for subset, rows in sorted(by_subset.items()):
        diff = max(r.max_abs_diff for r in rows)
        worst = max(worst, diff)
        agree = sum(r.agree for r in rows)
        table.add_row("+".join(subset), str(len(rows)), f"{diff:.2e}", f"{agree}/{len(rows)}")
    console.print(table)
    if worst > bound:
        console.print(f"[red]FAIL[/]: max |diff| {worst:.2e} > {bound:g}")
        raise typer.Exit(1)
    console.print(f"[green]OK[/]: max |diff| {worst:.2e} <= {bound:g}")


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
