"""One exception type for everything a user can cause.

Every error carries a category (so results files and exit codes can be machine-read) and,
where one is involved, the file it is about, so a message always says *which* file is bad.
"""

from __future__ import annotations

from pathlib import Path


class HyperMMError(Exception):
    """An error caused by input, configuration or environment rather than by a bug."""

    category = "error"

    def __init__(self, message: str, *, path: str | Path | None = None, category: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        if category is not None:
            self.category = category
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"category": self.category, "message": str(self), "file": self.path}


class ConfigError(HyperMMError):
    category = "config"


class CheckpointError(HyperMMError):
    category = "checkpoint"


class DatasetError(HyperMMError):
    category = "dataset"


class InputError(HyperMMError):
    """A patient's input cannot be used; category says why (corrupt, unsupported, ...)."""

    category = "input"


class EngineError(HyperMMError):
    category = "engine"
