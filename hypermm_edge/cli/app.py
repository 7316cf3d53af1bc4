"""Entry point. Exit codes: 0 success, 1 some patients failed (predict/verify), 2 usage or
configuration error. Errors caused by input are printed as one categorised line; `--debug`
shows the traceback."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler

from hypermm_edge import __version__
from hypermm_edge.errors import HyperMMError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="hypermm-edge",
    help="HyperMM (multimodal imaging with missing modalities) from training to edge inference.\n\n"
    "Exit codes: 0 success; 1 some patients failed; 2 usage or configuration error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level."),
) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
                        format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)])


def _register() -> None:
    from hypermm_edge.cli import (
        bench_cmd,
        build_cmd,
        demo_cmd,
        import_cmd,
        info_cmd,
        predict_cmd,
        synth_cmd,
        train_cmd,
        verify_cmd,
    )

    for module in (synth_cmd, train_cmd, import_cmd, build_cmd, predict_cmd, verify_cmd, info_cmd,
                   bench_cmd, demo_cmd):
        module.register(app)

    @app.command("version", help="Print the version.")
    def version() -> None:
        typer.echo(__version__)


_register()


def main() -> None:
    try:
        app()
    except HyperMMError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"error [{exc.category}] {exc}", style="bold red", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
