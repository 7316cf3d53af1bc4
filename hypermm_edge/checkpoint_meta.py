"""Read a checkpoint's config without torch (export and the CLI need it; torch is optional)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open

from hypermm_edge.config import ModelConfig
from hypermm_edge.errors import CheckpointError, ConfigError

FORMAT = "hypermm-edge/1"


def read_checkpoint_config(path: str | Path) -> tuple[ModelConfig, dict]:
    """Config and extra metadata, without reading any tensor."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"not a hypermm-edge checkpoint (safetensors) or corrupt: {exc}. A state_dict from the "
            "reference implementation is converted with `hypermm-edge import-reference`.", path=path
        ) from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"safetensors file without hypermm-edge metadata (format={meta.get('format')!r})",
                              path=path)
    try:
        config = ModelConfig.from_json(meta["config"])
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint config unreadable: {exc}", path=path) from exc
    return config, json.loads(meta.get("extra", "{}"))
