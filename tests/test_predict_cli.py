"""`predict` on real files: good and bad patients in one run, atomic results, resume after SIGKILL."""

from __future__ import annotations

import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from hypermm_edge.config import ModalitySpec
from tests.conftest import tiny_config


def _nifti(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), str(path))
    return path


def _good_volume(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((24, 24, 6)).astype(np.float32)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(path: Path) -> None:
    """A few hundred bytes that declare a 30000 x 30000 image."""
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 30001 * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))


def _dicom_series(folder: Path, n: int = 5) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"s{i}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Rows = ds.Columns = 24
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, float(n - i)]  # files in reverse order of position
        ds.RescaleSlope, ds.RescaleIntercept = 2, -100
        ds.PixelData = (rng.random((24, 24)) * 1000).astype(np.uint16).tobytes()
        ds.save_as(str(folder / f"s{i}.dcm"), enforce_file_format=True)
    (folder / "README.txt").write_text("not a DICOM file")


@pytest.fixture(scope="module")
def mixed_engines(tmp_path_factory) -> Path:
    """A tiny model with a volume modality and an image-set modality, built to ONNX Runtime engines."""
    import torch

    from hypermm_edge.export.build import BuildRequest, build_engines
    from hypermm_edge.manifest import Profile
    from hypermm_edge.model.checkpoint import save_checkpoint
    from hypermm_edge.model.hypermm import HyperMM

    torch.manual_seed(0)
    cfg = tiny_config(modalities=(ModalitySpec("MRI", 0), ModalitySpec("HISTO", 1, "images")))
    root = tmp_path_factory.mktemp("mixed")
    ckpt = save_checkpoint(HyperMM(cfg), root / "m.safetensors")
    build_engines(BuildRequest(ckpt, root / "engines", "onnxruntime",
                               profile=Profile(max_batch=4, opt_batch=1, max_slices=16, opt_slices=8)))
    return root / "engines"


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hypermm_edge.cli.app", *args], capture_output=True, text=True,
                          **kw)


def test_bad_patients_get_categorised_errors_good_ones_results(mixed_engines, tmp_path):
    root = tmp_path / "patients"
    root.mkdir()
    expected: dict[str, tuple[str, str]] = {}  # patient -> (category, file named in the error)

    def patient(name: str) -> Path:
        p = root / name
        p.mkdir()
        return p

    _nifti(patient("good_mri") / "MRI.nii.gz", _good_volume(0))
    good_histo = patient("good_histo_only") / "HISTO"
    good_histo.mkdir()
    Image.fromarray((np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)).save(good_histo / "a.png")
    Image.fromarray((np.random.default_rng(2).random((40, 40)) * 65535).astype(np.uint16)).save(good_histo / "b.png")
    _dicom_series(patient("dicom_with_stray_file") / "mri")

    full = _nifti(tmp_path / "full.nii.gz", _good_volume(3)).read_bytes()
    (patient("truncated") / "MRI.nii.gz").write_bytes(full[: len(full) // 2])
    expected["truncated"] = ("input.corrupt", "MRI.nii.gz")
    raw = gzip.decompress(full)
    (patient("not_gzip") / "MRI.nii.gz").write_bytes(raw)
    expected["not_gzip"] = ("input.corrupt", "MRI.nii.gz")
    header = bytearray(raw[:352])
    header[40:56] = struct.pack("<8h", 3, 30000, 30000, 30000, 1, 1, 1, 1)
    (patient("enormous_header") / "MRI.nii").write_bytes(bytes(header) + raw[352:])
    expected["enormous_header"] = ("input.too_large", "MRI.nii")
    (patient("zero_bytes") / "MRI.nii.gz").write_bytes(b"")
    expected["zero_bytes"] = ("input.corrupt", "MRI.nii.gz")
    nan = _good_volume(4)
    nan[3, 3, 3] = np.nan
    _nifti(patient("nan_voxels") / "MRI.nii.gz", nan)
    expected["nan_voxels"] = ("input.invalid_values", "MRI.nii.gz")
    _nifti(patient("true_4d") / "MRI.nii.gz", np.zeros((8, 8, 8, 3)))
    expected["true_4d"] = ("input.unsupported", "MRI.nii.gz")
    (patient("text_as_png") / "HISTO").mkdir()
    (root / "text_as_png" / "HISTO" / "x.png").write_text("this is not an image")
    expected["text_as_png"] = ("input.unsupported", "x.png")
    (patient("bomb_png") / "HISTO").mkdir()
    _bomb_png(root / "bomb_png" / "HISTO" / "bomb.png")
    expected["bomb_png"] = ("input.too_large", "bomb.png")
    (patient("pdf_as_png") / "HISTO").mkdir()
    (root / "pdf_as_png" / "HISTO" / "scan.png").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nendobj\n%%EOF\n")
    expected["pdf_as_png"] = ("input.unsupported", "scan.png")
    (patient("no_known_modality") / "notes.txt").write_text("CT only")
    expected["no_known_modality"] = ("input.missing", "no_known_modality")
    unreadable = patient("unreadable")
    if os.geteuid() == 0:  # root reads any file: use a link to a file that is not there
        (unreadable / "MRI.nii.gz").symlink_to(unreadable / "gone.nii.gz")
    else:
        _nifti(unreadable / "MRI.nii.gz", _good_volume(5)).chmod(0)
    expected["unreadable"] = ("input.unreadable", "MRI.nii.gz")
    outside = _nifti(tmp_path / "outside.nii.gz", _good_volume(6))
    (patient("symlink_out") / "MRI.nii.gz").symlink_to(outside)
    expected["symlink_out"] = ("input.security", "MRI.nii.gz")

    folders = sorted(str(p) for p in root.iterdir())
    proc = _run(["predict", *folders, "--engines", str(mixed_engines), "--json", "--output",
                 str(tmp_path / "results.jsonl")])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    records = {r["patient"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(records) == {Path(f).name for f in folders}
    for name, (category, filename) in expected.items():
        r = records[name]
        assert r["status"] == "error", (name, r)
        assert r["error"]["category"] == category, (name, r["error"])
        assert filename in r["error"]["message"], (name, r["error"])
    for name in ("good_mri", "good_histo_only", "dicom_with_stray_file"):
        r = records[name]
        assert r["status"] == "ok", (name, r)
        assert 0.0 <= r["probability"] <= 1.0 and r["prediction"] in ("CN", "AD")
        assert r["backend"] == "onnxruntime" and r["precision"] == "fp32" and len(r["engine_sha256"]) == 64
        assert r["timings_ms"]["total"] > 0
    assert records["good_mri"]["missing"] == ["HISTO"]
    assert records["good_histo_only"]["modalities"] == ["HISTO"]
    assert records["dicom_with_stray_file"]["ignored"] == ["mri/README.txt"]
    saved = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(saved) == len(folders)


def test_a_bad_patient_does_not_change_the_others(mixed_engines, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    _nifti(good / "MRI.nii.gz", _good_volume(7))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "MRI.nii.gz").write_bytes(b"")
    alone = json.loads(_run(["predict", str(good), "--engines", str(mixed_engines), "--json"]).stdout)
    mixed = _run(["predict", str(bad), str(good), "--engines", str(mixed_engines), "--json"]).stdout.splitlines()
    assert json.loads(mixed[1])["probability"] == alone["probability"]


def test_table_output_usage_errors_and_exit_codes(mixed_engines, tmp_path):
    good = tmp_path / "p1"
    good.mkdir()
    _nifti(good / "mri.nii.gz", _good_volume(8))  # names match case-insensitively
    proc = _run(["predict", str(good), "--engines", str(mixed_engines)])
    assert proc.returncode == 0, proc.stderr
    assert "p1" in proc.stdout and "1 ok, 0 failed" in proc.stdout
    proc = _run(["predict", str(good), "--engines", str(tmp_path / "nope")])
    assert proc.returncode == 2 and "manifest" in proc.stderr and "Traceback" not in proc.stderr
    assert "Exit codes" in _run(["predict", "--help"]).stdout


def test_sigkill_leaves_results_complete_and_resume_finishes(mixed_engines, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        (root / f"p{i:02d}").mkdir()
        _nifti(root / f"p{i:02d}" / "MRI.nii.gz", rng.random((48, 48, 96)).astype(np.float32))
    folders = sorted(str(p) for p in root.iterdir())
    results = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-m", "hypermm_edge.cli.app", "predict", *folders, "--engines", str(mixed_engines),
           "--output", str(results), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (results.exists() and results.read_text().count("\n") >= 2):
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = results.read_text().splitlines()
    assert 2 <= len(lines) < 24, "the kill should land mid-run"
    done_before = [json.loads(line) for line in lines]  # every line is a complete record
    assert all(r["status"] == "ok" for r in done_before)

    proc = _run(["predict", *folders, "--engines", str(mixed_engines), "--output", str(results), "--resume"])
    assert proc.returncode == 0, proc.stderr
    assert f"{len(done_before)} patients already done" in proc.stdout
    final = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["patient"] for r in final) == [f"p{i:02d}" for i in range(24)]
    kept = {r["patient"]: r for r in final}
    for r in done_before:  # resumed patients were not recomputed
        assert kept[r["patient"]]["timings_ms"] == r["timings_ms"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # without --resume an existing results file is not overwritten
    again = _run(["predict", folders[0], "--engines", str(mixed_engines), "--output", str(results)])
    assert again.returncode == 2 and "--resume" in again.stderr


def test_feature_cache_reuses_unchanged_inputs_and_equals_uncached(mixed_engines, tmp_path):
    patient = tmp_path / "p"
    patient.mkdir()
    _nifti(patient / "MRI.nii.gz", _good_volume(9))
    cache = tmp_path / "cache"
    args = ["predict", str(patient), "--engines", str(mixed_engines), "--json"]
    first = json.loads(_run([*args, "--cache", str(cache)]).stdout)
    assert first["status"] == "ok", first
    assert first["cache_hits"] == [] and first["modalities"] == ["MRI"]
    # a modality arrives later: only it runs; MRI comes from the cache
    (patient / "HISTO").mkdir()
    Image.fromarray((np.random.default_rng(3).random((36, 36, 3)) * 255).astype(np.uint8)).save(
        patient / "HISTO" / "a.png")
    second = json.loads(_run([*args, "--cache", str(cache)]).stdout)
    assert second["cache_hits"] == ["MRI"] and sorted(second["modalities"]) == ["HISTO", "MRI"]
    uncached = json.loads(_run(args).stdout)
    assert second["probability"] == pytest.approx(uncached["probability"], abs=1e-7)
    third = json.loads(_run([*args, "--cache", str(cache)]).stdout)
    assert sorted(third["cache_hits"]) == ["HISTO", "MRI"] and third["timings_ms"]["trunk"] == 0
    assert third["probability"] == second["probability"]
    # a changed file is a miss, never a stale hit
    _nifti(patient / "MRI.nii.gz", _good_volume(10))
    fourth = json.loads(_run([*args, "--cache", str(cache)]).stdout)
    assert fourth["cache_hits"] == ["HISTO"] and fourth["probability"] != third["probability"]


def test_read_limits_are_configurable(mixed_engines, tmp_path):
    patient = tmp_path / "p"
    patient.mkdir()
    _nifti(patient / "MRI.nii.gz", _good_volume(11))  # 24*24*6 = 3456 voxels
    args = ["predict", str(patient), "--engines", str(mixed_engines), "--json"]
    assert json.loads(_run(args).stdout)["status"] == "ok"
    refused = json.loads(_run([*args, "--max-voxels", "3000"]).stdout)
    assert refused["error"]["category"] == "input.too_large" and "3456" in refused["error"]["message"]


def test_table_shows_error_categories_verbatim(mixed_engines, tmp_path):
    bad = tmp_path / "bad[1]"
    bad.mkdir()
    (bad / "MRI.nii.gz").write_bytes(b"")
    proc = _run(["predict", str(bad), "--engines", str(mixed_engines)], env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1
    assert "[input.corrupt]" in proc.stdout and "bad[1]" in proc.stdout  # not swallowed as markup
