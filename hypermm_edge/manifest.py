"""`manifest.json`: everything the runtime needs to know about an engine directory.

Schema-versioned; written atomically; every file it names carries a SHA-256 that the runtime
checks before the file is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypermm_edge.config import ModelConfig
from hypermm_edge.errors import EngineError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
PRECISIONS = ("fp32", "fp16", "int8")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Temporary file, fsync, rename: readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class PartSpec:
    """One engine: the trunk, one modality's head, or rho."""

    file: str
    onnx: str
    precision: str
    sha256: str
    onnx_sha256: str
    inputs: dict[str, list[Any]]
    outputs: dict[str, list[Any]]


@dataclass
class Profile:
    """Dynamic-shape ranges: inputs per trunk call (batch) and slices per call."""

    max_batch: int = 16
    opt_batch: int = 1
    max_slices: int = 64
    opt_slices: int = 32

    def validate(self) -> None:
        if not (1 <= self.opt_batch <= self.max_batch and 1 <= self.opt_slices <= self.max_slices):
            raise EngineError(f"profile needs 1 <= opt <= max for batch and slices: {self}")


@dataclass
class Manifest:
    backend: str
    model: dict[str, Any]
    parts: dict[str, PartSpec]
    profile: Profile
    tools: dict[str, str]
    checkpoint_sha256: str
    device: dict[str, Any] = field(default_factory=dict)
    backend_options: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.model)

    @staticmethod
    def head_key(modality: str) -> str:
        return f"head_{modality}"

    def precision_summary(self) -> str:
        """`fp32`, or e.g. `trunk=int8,head=fp32,rho=fp32` when parts differ."""
        heads = {p.precision for k, p in self.parts.items() if k.startswith("head_")}
        by_part = {"trunk": self.parts["trunk"].precision, "head": "/".join(sorted(heads)),
                   "rho": self.parts["rho"].precision}
        values = set(by_part.values())
        return values.pop() if len(values) == 1 else ",".join(f"{k}={v}" for k, v in by_part.items())

    def fingerprint(self) -> str:
        """One hash for all engine files: results name the exact engines that produced them."""
        h = hashlib.sha256()
        for key in sorted(self.parts):
            h.update(f"{key}:{self.parts[key].sha256};".encode())
        return h.hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise EngineError("no manifest.json: not an engine directory (see `hypermm-edge build-engines`)",
                              path=directory)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EngineError(f"manifest is not valid JSON: {exc}", path=path) from exc
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise EngineError(f"manifest schema {version} is not supported (this hypermm-edge reads "
                              f"{SCHEMA_VERSION}); rebuild the engines", path=path)
        try:
            data["parts"] = {k: PartSpec(**v) for k, v in data["parts"].items()}
            data["profile"] = Profile(**data["profile"])
            manifest = cls(**data)
            manifest.config  # noqa: B018  (validates the model section)
        except (TypeError, KeyError) as exc:
            raise EngineError(f"malformed manifest: {exc}", path=path) from exc
        return manifest


def verify_file(directory: Path, name: str, expected: str) -> Path:
    path = directory / name
    if not path.is_file():
        raise EngineError("engine file listed in the manifest is missing", path=path)
    actual = sha256_file(path)
    if actual != expected:
        raise EngineError(f"SHA-256 {actual[:12]}... does not match the manifest ({expected[:12]}...): "
                          "the file was changed or corrupted; rebuild the engines", path=path)
    return path
