"""Results files: JSON lines, rewritten atomically as patients complete.

Each rewrite goes through a temporary file, fsync and rename, so a crash or SIGKILL leaves the
previous complete file or the new complete one, never a torn line; `--resume` reads it back.
Rewrites happen after a patient when at least `flush_seconds` have passed since the last one
(and always at the end), so a run of many fast patients does not rewrite a large file each
time; a kill can only cost the last few seconds of results, which `--resume` recomputes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hypermm_edge.errors import ConfigError
from hypermm_edge.manifest import atomic_write_text


class ResultsFile:
    def __init__(self, path: Path, resume: bool, flush_seconds: float = 1.0) -> None:
        self.path = path
        self.flush_seconds = flush_seconds
        self._last_flush = float("-inf")
        self._dirty = False
        self.records: dict[str, dict[str, Any]] = {}
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed run; never read
            stale.unlink(missing_ok=True)
        if path.exists():
            if not resume:
                raise ConfigError("results file exists; pass --resume to continue it or choose another --output",
                                  path=path)
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    self.records[record["path"]] = record
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ConfigError(f"line {n} is not a result record ({exc})", path=path) from exc

    def done(self, key: str) -> bool:
        record = self.records.get(key)
        return record is not None and record.get("status") == "ok"

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["path"]] = record
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records.values()))
        self._dirty = False
        self._last_flush = time.monotonic()
