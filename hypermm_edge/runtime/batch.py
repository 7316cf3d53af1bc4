"""Many patients in one run: each gets a record, whatever happens to the others."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypermm_edge.errors import HyperMMError
from hypermm_edge.readers.patient import read_patient
from hypermm_edge.runtime.predictor import Predictor

log = logging.getLogger(__name__)


def predict_patient(predictor: Predictor, folder: Path) -> dict[str, Any]:
    """One record: `status` ok with the prediction, or error with category, message and file."""
    config = predictor.config
    record: dict[str, Any] = {
        "patient": folder.name, "path": str(folder.resolve()), "backend": predictor.manifest.backend,
        "precision": predictor.manifest.precision_summary(), "engine_sha256": predictor.engine_sha256,
    }
    try:
        patient = read_patient(folder, config)
        prediction = predictor.predict(patient)
    except HyperMMError as exc:
        record.update(status="error", error=exc.to_dict())
        return record
    except OSError as exc:  # unreadable file, vanished file, I/O error
        record.update(status="error", error={"category": "input.unreadable", "message": str(exc),
                                             "file": getattr(exc, "filename", None)})
        return record
    except Exception as exc:  # a bug must not cost the other patients their results
        log.debug("unexpected error for %s", folder, exc_info=True)
        record.update(status="error", error={"category": "internal", "message": f"{type(exc).__name__}: {exc}",
                                             "file": str(folder)})
        return record
    present = set(prediction.modalities)
    record.update(
        status="ok", **prediction.to_dict(config.labels),
        missing=[m.name for m in config.modalities if m.name not in present],
        ignored=patient.ignored, timings_ms={k: round(v, 3) for k, v in prediction.timings_ms.items()},
        providers=predictor.providers,
    )
    return record


def predict_many(predictor: Predictor, folders: list[Path], skip: set[str] | None = None
                 ) -> Iterator[dict[str, Any]]:
    for folder in folders:
        if skip and str(folder.resolve()) in skip:
            continue
        yield predict_patient(predictor, folder)
