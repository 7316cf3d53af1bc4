"""Many patients in one run: each gets a record, whatever happens to the others.

The next patient's files are read and preprocessed on a worker thread while the engines run
on the current one (nibabel's gzip, Pillow and ONNX Runtime release the GIL), so reading
overlaps compute instead of adding to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hypermm_edge.errors import HyperMMError
from hypermm_edge.readers.limits import DEFAULT_LIMITS, ReadLimits
from hypermm_edge.readers.patient import PatientSet, locate_inputs, read_patient
from hypermm_edge.runtime.feature_cache import FeatureCache
from hypermm_edge.runtime.predictor import Prediction, Predictor

log = logging.getLogger(__name__)


def _error(exc: BaseException | None, folder: Path) -> dict[str, Any]:
    if isinstance(exc, HyperMMError):
        return exc.to_dict()
    if isinstance(exc, OSError):  # unreadable file, vanished file, I/O error
        return {"category": "input.unreadable", "message": str(exc), "file": getattr(exc, "filename", None)}
    log.debug("unexpected error for %s", folder, exc_info=exc)
    return {"category": "internal", "message": f"{type(exc).__name__}: {exc}", "file": str(folder)}


def _error_record(predictor: Predictor, folder: Path, exc: BaseException | None) -> dict[str, Any]:
    return {**_base_record(predictor, folder), "status": "error", "error": _error(exc, folder)}


def _guarded(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return fn(), None
    except Exception as exc:  # a bug must not cost the other patients their results
        return None, exc


def _base_record(predictor: Predictor, folder: Path) -> dict[str, Any]:
    return {"patient": folder.name, "path": str(folder.resolve()), "backend": predictor.manifest.backend,
            "precision": predictor.manifest.precision_summary(), "engine_sha256": predictor.engine_sha256}


def _ok_record(predictor: Predictor, folder: Path, prediction: Prediction, ignored: list[str]) -> dict[str, Any]:
    present = set(prediction.modalities)
    return {
        **_base_record(predictor, folder), "status": "ok", **prediction.to_dict(predictor.config.labels),
        "missing": [m.name for m in predictor.config.modalities if m.name not in present],
        "ignored": ignored, "timings_ms": {k: round(v, 3) for k, v in prediction.timings_ms.items()},
        "providers": predictor.providers,
    }


def _record(predictor: Predictor, folder: Path, loaded: tuple[PatientSet | None, BaseException | None]
            ) -> dict[str, Any]:
    patient, exc = loaded
    if patient is not None:
        prediction, exc = _guarded(lambda: predictor.predict(patient))
        if prediction is not None:
            return _ok_record(predictor, folder, prediction, patient.ignored)
    return _error_record(predictor, folder, exc)


def predict_cached(predictor: Predictor, folder: Path, cache: FeatureCache,
                   limits: ReadLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Like predict_patient, but phi's rows come from the cache where the input is unchanged."""

    def run() -> dict[str, Any]:
        located, ignored = locate_inputs(folder, predictor.config)
        rows, hits, misses = {}, [], {}
        for name, path in located.items():
            key = cache.key(path, folder)
            cached = cache.get(key)
            if cached is not None:
                rows[name] = cached
                hits.append(name)
            else:
                misses[name] = key
        timings: dict[str, float] = {"read": 0.0, "preprocess": 0.0, "trunk": 0.0, "head": 0.0,
                                     "aggregate": 0.0, "rho": 0.0}
        if misses:
            patient = read_patient(folder, predictor.config, limits, only=set(misses))
            timings["read"], timings["preprocess"] = patient.read_ms, patient.preprocess_ms
            ignored = patient.ignored
            for x in patient.inputs:
                rows[x.modality.name] = predictor.extract(x, timings)
                cache.put(misses[x.modality.name], rows[x.modality.name])
        ordered = {name: rows[name] for name in located}  # folder order, as an uncached run
        prediction = predictor.predict_rows(ordered, timings)
        prediction.timings_ms["total"] = sum(timings.values())
        record = _ok_record(predictor, folder, prediction, ignored)
        record["cache_hits"] = hits
        return record

    record, exc = _guarded(run)
    return record if record is not None else _error_record(predictor, folder, exc)


def predict_patient(predictor: Predictor, folder: Path, limits: ReadLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """One record: `status` ok with the prediction, or error with category, message and file."""
    return _record(predictor, folder, _guarded(lambda: read_patient(folder, predictor.config, limits)))


def predict_many(predictor: Predictor, folders: list[Path], prefetch: bool = True,
                 cache: FeatureCache | None = None, limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[dict[str, Any]]:
    if cache is not None:  # reads are skipped on hits, so there is nothing to prefetch
        for folder in folders:
            yield predict_cached(predictor, folder, cache, limits)
        return
    if not prefetch or len(folders) < 2:
        for folder in folders:
            yield predict_patient(predictor, folder, limits)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hypermm-read") as pool:
        def submit(folder: Path) -> Future:
            return pool.submit(_guarded, lambda: read_patient(folder, predictor.config, limits))

        pending = submit(folders[0])
        for i, folder in enumerate(folders):
            loaded = pending.result()
            if i + 1 < len(folders):
                pending = submit(folders[i + 1])
            yield _record(predictor, folder, loaded)
