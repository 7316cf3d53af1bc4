from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def import_reference(
    state_dict: Annotated[Path, typer.Argument(help="state_dict saved by the reference implementation.")],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint to write (.safetensors).")],
    modalities: Annotated[str, typer.Option(help="Modality names in id order (reference: PET=0, MRI=1).")]
    = "PET,MRI",
) -> None:
    """Convert a reference-implementation state_dict into a hypermm-edge checkpoint."""
    from hypermm_edge.model.checkpoint import save_checkpoint
    from hypermm_edge.model.reference import import_reference as do_import

    names = [m.strip() for m in modalities.split(",") if m.strip()]
    model = do_import(state_dict, names)
    save_checkpoint(model, out, extra={"imported_from": str(state_dict)})
    typer.echo(f"wrote {out} ({', '.join(names)}; input {model.config.input_size}px)")


def register(app: typer.Typer) -> None:
    app.command("import-reference")(import_reference)
