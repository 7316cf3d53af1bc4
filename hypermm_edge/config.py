"""The one configuration object that travels with the weights.

Like timm's pretrained configs, preprocessing is stored beside the architecture so a
checkpoint or an engine directory alone says how its pixels must be prepared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from hypermm_edge.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRUNK_CHANNELS = 512
TRUNK_STRIDE = 32  # five 2x2 max-pools in VGG11's conv trunk

InputKind = Literal["volume", "images"]
Aggregation = Literal["mean", "sum", "max"]
INPUT_KINDS: tuple[str, ...] = ("volume", "images")
AGGREGATIONS: tuple[str, ...] = ("mean", "sum", "max")
INTENSITY_MODES: tuple[str, ...] = ("minmax", "none")


@dataclass(frozen=True)
class ModalitySpec:
    """A modality: its name in patient folders, its embedding id, and how its files look."""

    name: str
    id: int
    kind: str = "volume"


@dataclass(frozen=True)
class PreprocessConfig:
    """The reference's preprocessing (shared/notes/reference-checkpoint.md) by default."""

    slice_axis: int = 2
    reorient_canonical: bool = True
    intensity: str = "minmax"  # minmax: per input to [0, 1]; none: input already 8-bit
    resize_shorter: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class ArchConfig:
    num_embeddings: int = 20
    embedding_dim: int = 5
    hypernet_hidden: int = 20
    classifier_hidden: int = 512
    rho_hidden: tuple[int, ...] = (512,)
    dropout: float = 0.5


@dataclass(frozen=True)
class ModelConfig:
    modalities: tuple[ModalitySpec, ...] = (ModalitySpec("PET", 0), ModalitySpec("MRI", 1))
    labels: tuple[str, ...] = ("CN", "AD")
    aggregation: str = "mean"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.preprocess.crop

    @property
    def feature_hw(self) -> int:
        return self.preprocess.crop // TRUNK_STRIDE

    @property
    def feature_dim(self) -> int:
        return TRUNK_CHANNELS * self.feature_hw * self.feature_hw

    @property
    def num_outputs(self) -> int:
        """Binary tasks use one logit (as the reference), others one logit per class."""
        return 1 if len(self.labels) == 2 else len(self.labels)

    def modality(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name.lower() == name.lower():
                return m
        known = ", ".join(m.name for m in self.modalities)
        raise ConfigError(f"unknown modality {name!r}; this model knows {known}")

    # ---- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        if not self.modalities:
            raise ConfigError("at least one modality is required")
        names = [m.name.lower() for m in self.modalities]
        if len(set(names)) != len(names):
            raise ConfigError(f"modality names must be unique (case-insensitive): {names}")
        ids = [m.id for m in self.modalities]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"modality ids must be unique: {ids}")
        for m in self.modalities:
            if m.kind not in INPUT_KINDS:
                raise ConfigError(f"modality {m.name}: kind must be one of {INPUT_KINDS}, not {m.kind!r}")
            if not 0 <= m.id < self.arch.num_embeddings:
                raise ConfigError(f"modality {m.name}: id {m.id} outside 0..{self.arch.num_embeddings - 1}")
        if len(self.labels) < 2:
            raise ConfigError("at least two labels are required")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, not {self.aggregation!r}")
        p = self.preprocess
        if p.intensity not in INTENSITY_MODES:
            raise ConfigError(f"intensity must be one of {INTENSITY_MODES}, not {p.intensity!r}")
        if p.crop < TRUNK_STRIDE or p.crop % TRUNK_STRIDE:
            raise ConfigError(f"crop must be a positive multiple of {TRUNK_STRIDE}, not {p.crop}")
        if p.resize_shorter < p.crop:
            raise ConfigError(f"resize_shorter ({p.resize_shorter}) must be >= crop ({p.crop})")
        if p.slice_axis not in (0, 1, 2):
            raise ConfigError(f"slice_axis must be 0, 1 or 2, not {p.slice_axis}")
        if not self.arch.rho_hidden or any(h <= 0 for h in self.arch.rho_hidden):
            raise ConfigError(f"rho_hidden must be positive sizes, not {self.arch.rho_hidden}")

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        try:
            return cls(
                modalities=tuple(_build(ModalitySpec, m) for m in data["modalities"]),
                labels=tuple(data["labels"]),
                aggregation=data.get("aggregation", "mean"),
                preprocess=_build(PreprocessConfig, data.get("preprocess", {})),
                arch=_build(ArchConfig, data.get("arch", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"malformed model config: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model config is not valid JSON: {exc}") from exc


def _build(kind: type, data: dict[str, Any]) -> Any:
    """Build a frozen dataclass from JSON, refusing unknown keys instead of dropping them."""
    allowed = {f.name for f in fields(kind)}
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return kind(**values)


def parse_modalities(text: str, kinds: dict[str, str] | None = None) -> tuple[ModalitySpec, ...]:
    """`PET,MRI` or `MRI:volume,HISTO:images` -> specs with ids in the order given."""
    specs = []
    for i, token in enumerate(t.strip() for t in text.split(",")):
        if not token:
            raise ConfigError(f"empty modality name in {text!r}")
        name, _, kind = token.partition(":")
        specs.append(ModalitySpec(name, i, kind or (kinds or {}).get(name, "volume")))
    return tuple(specs)
