from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypermm_edge.config import PreprocessConfig
from hypermm_edge.data.cohort import read_cohort, split_patients
from hypermm_edge.data.synth import SynthSpec, make_synthetic_cohort
from hypermm_edge.errors import DatasetError
from hypermm_edge.preprocess import images_to_batch, volume_to_slices


def _reference_slice(u8: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """The reference pipeline spelled out with Pillow on an RGB image, as torchvision does it."""
    img = Image.fromarray(u8).convert("RGB")
    w, h = img.size
    if min(w, h) != resize:
        if w <= h:
            img = img.resize((resize, int(resize * h / w)), Image.BILINEAR)
        else:
            img = img.resize((int(resize * w / h), resize), Image.BILINEAR)
    w, h = img.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    arr = np.asarray(img, dtype=np.float32)[top : top + crop, left : left + crop] / 255.0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return ((arr - mean) / std).transpose(2, 0, 1).astype(np.float32)


def test_volume_slices_match_reference_preprocessing():
    rng = np.random.default_rng(0)
    vol = rng.normal(100, 30, (40, 50, 7)).astype(np.float32)
    cfg = PreprocessConfig(resize_shorter=36, crop=32)
    out = volume_to_slices(vol, cfg)
    assert out.shape == (7, 3, 32, 32) and out.dtype == np.float32
    scaled = (vol - vol.min()) / (vol.max() - vol.min())
    u8 = (scaled * 255).astype(np.uint8)
    for k in range(7):  # slice k is v[:, :, k], rows = first axis, no transposition
        np.testing.assert_allclose(out[k], _reference_slice(u8[:, :, k], 36, 32), atol=1e-5)


def test_slice_axis_and_constant_volume():
    vol = np.zeros((32, 32, 4), np.float32)
    out = volume_to_slices(vol, PreprocessConfig(resize_shorter=32, crop=32, slice_axis=0))
    assert out.shape == (32, 3, 32, 32)
    assert np.allclose(out[:, 0], (0 - 0.485) / 0.229)


def test_images_grey_and_rgb_become_set_elements():
    cfg = PreprocessConfig(resize_shorter=32, crop=32)
    grey = np.full((40, 40), 128, np.uint8)
    rgb = np.zeros((48, 32, 3), np.uint8)
    batch = images_to_batch([grey, rgb], cfg)
    assert batch.shape == (2, 1, 3, 32, 32)
    np.testing.assert_allclose(batch[0, 0, 1], (128 / 255 - 0.456) / 0.224, atol=1e-5)


def test_synthetic_cohort_is_deterministic(tmp_path):
    a = make_synthetic_cohort(tmp_path / "a", SynthSpec(patients=6, size=16, seed=5, histology=True))
    b = make_synthetic_cohort(tmp_path / "b", SynthSpec(patients=6, size=16, seed=5, histology=True))
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert any("HISTO" in p.parts for p in files_a)
    for rel in files_a:
        if rel.suffix != ".gz":  # gzip headers hold a timestamp; compare decoded volumes instead
            assert (a / rel).read_bytes() == (b / rel).read_bytes()
    import nibabel as nib

    for rel in (r for r in files_a if r.suffix == ".gz"):
        assert np.array_equal(nib.load(a / rel).get_fdata(), nib.load(b / rel).get_fdata())
    patients, labels = read_cohort(a)
    assert labels == ("AD", "CN") and len(patients) == 6


def test_cohort_errors_name_the_problem(tmp_path):
    (tmp_path / "labels.csv").write_text("patient,label\np1,CN\np2,\n")
    with pytest.raises(DatasetError, match="line 3"):
        read_cohort(tmp_path)
    (tmp_path / "labels.csv").write_text("patient,label\np1,CN\np2,AD\n")
    with pytest.raises(DatasetError, match="p1"):
        read_cohort(tmp_path)
    (tmp_path / "labels.csv").write_text("name,y\n")
    with pytest.raises(DatasetError, match="header"):
        read_cohort(tmp_path)


def test_split_is_by_patient_6_1_3_and_seeded(tmp_path):
    make_synthetic_cohort(tmp_path, SynthSpec(patients=20, size=8, seed=0))
    patients, _ = read_cohort(tmp_path)
    train, val, test = split_patients(patients, seed=1)
    assert (len(train), len(val), len(test)) == (12, 2, 6)
    assert not {p.patient for p in train} & {p.patient for p in test}
    assert split_patients(patients, seed=1) == (train, val, test)
    assert split_patients(patients, seed=2) != (train, val, test)
