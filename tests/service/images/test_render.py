"""service.images.render: .npz answers read back exactly and carry CRCs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from service.images import render

ARRAYS = {
    "conv1": np.random.default_rng(0).normal(size=(28, 28, 32)).astype(np.float32),
    "probs": np.linspace(0, 1, 10, dtype=np.float32),
    "strided": np.arange(60, dtype=np.int64).reshape(3, 4, 5)[:, ::2, ::-1],  # not contiguous
    "fortran": np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
    "scalar": np.array(3.5),
    "empty": np.zeros((0, 4), np.uint8),
    "ünï": np.ones(3, np.int16),
}


def test_npz_reads_back_with_np_load_exactly() -> None:
    loaded = np.load(io.BytesIO(render.npz(ARRAYS)))
    assert sorted(loaded.files) == sorted(ARRAYS)
    for name, value in ARRAYS.items():
        assert loaded[name].dtype == value.dtype, name
        np.testing.assert_array_equal(loaded[name], value)


def test_npz_is_a_valid_zip_with_correct_crcs() -> None:
    with zipfile.ZipFile(io.BytesIO(render.npz(ARRAYS))) as z:
        assert z.testzip() is None  # every member's CRC checks out
        assert [i.filename for i in z.infolist()] == [f"{n}.npy" for n in ARRAYS]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())


def test_a_corrupted_member_is_detected_by_the_reader() -> None:
    raw = bytearray(render.npz({"a": np.arange(100, dtype=np.float32)}))
    raw[200] ^= 0xFF  # flip bits inside the array data
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z, pytest.raises(zipfile.BadZipFile):
        z.read("a.npy")


def test_npz_of_nothing_is_an_empty_archive() -> None:
    assert np.load(io.BytesIO(render.npz({}))).files == []
