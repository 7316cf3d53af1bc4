from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def info(engine_dir: Annotated[Path, typer.Argument(help="Engine directory (holds manifest.json).")]) -> None:
    """Show an engine directory's manifest as tables."""
    from hypermm_edge.manifest import Manifest

    m = Manifest.load(engine_dir)
    c = m.config
    console = Console()
    t = Table(title=f"{engine_dir} (schema {m.schema_version})", show_header=False)
    t.add_row("backend", m.backend)
    t.add_row("precision", m.precision_summary())
    t.add_row("modalities", ", ".join(f"{x.name} ({x.kind}, id {x.id})" for x in c.modalities))
    t.add_row("labels", ", ".join(c.labels))
    t.add_row("aggregation", c.aggregation)
    p = c.preprocess
    t.add_row("preprocess", f"axis {p.slice_axis}, {p.intensity}, resize {p.resize_shorter}, crop {p.crop}, "
                            f"RAS {'yes' if p.reorient_canonical else 'no'}")
    t.add_row("profile", f"batch {m.profile.opt_batch}/{m.profile.max_batch} (opt/max), "
                         f"slices {m.profile.opt_slices}/{m.profile.max_slices}")
    t.add_row("tools", ", ".join(f"{k} {v}" for k, v in sorted(m.tools.items())))
    t.add_row("device", ", ".join(f"{k}={v}" for k, v in sorted(m.device.items())))
    t.add_row("checkpoint sha256", m.checkpoint_sha256)
    console.print(t)
    parts = Table(title="engines")
    for col in ("part", "file", "precision", "input", "output", "sha256"):
        parts.add_column(col)
    for key, part in m.parts.items():
        parts.add_row(key, part.file, part.precision, str(next(iter(part.inputs.values()))),
                      str(next(iter(part.outputs.values()))), part.sha256[:16])
    console.print(parts)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
