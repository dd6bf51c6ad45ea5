"""``model.onnx``: serving_default converted for ONNX Runtime, written only when it agrees
with TensorFlow on the version's check pictures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnlab import agreement
from cnnlab.layout import ONNX_CHECK_FILE, ONNX_FILE
from tests.helpers import dim_pictures, export_tiny
from training import onnx_export


def test_a_trusted_version_gets_a_checked_model_onnx(tmp_path: Path) -> None:
    version = export_tiny(tmp_path / "tiny", trusted=True)
    pictures = np.concatenate([dim_pictures(20, 5), np.full((20, 28, 28, 1), 200, np.uint8)])
    entry = onnx_export.write(version, pictures)["onnx"]
    assert entry["file"] == ONNX_FILE and entry["pictures"] == onnx_export.CHECK_PICTURES
    assert entry["verdicts_identical"] and entry["max_probability_gap"] <= agreement.ATOL
    np.testing.assert_array_equal(np.load(version / ONNX_CHECK_FILE), pictures[:32])
    import onnxruntime as ort

    session = ort.InferenceSession(str(version / ONNX_FILE))
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert sorted(o.name for o in session.get_outputs()) == [
        "in_distribution", "ood_score", "probabilities"]
    assert not list(version.glob(".*.tmp"))  # renamed into place, whole


def test_a_model_that_disagrees_is_not_written(tmp_path: Path) -> None:
    """Another version's graph checked against this version: refused, nothing written."""
    ours = export_tiny(tmp_path / "tiny", seed=0, trusted=True)
    other = export_tiny(tmp_path / "other", seed=1, trusted=True)
    converted = onnx_export.convert(other).SerializeToString()
    with pytest.raises(onnx_export.OnnxError, match="differ"):
        onnx_export.agree(ours, converted, np.full((4, 28, 28, 1), 120, np.uint8))
    shutil.rmtree(other)
    assert not (ours / ONNX_FILE).exists()


def test_the_cli_adds_model_onnx_to_a_published_version(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from tests.training.test_data import make_dataset_dir
    from training import cli

    models = tmp_path / "models"
    version = export_tiny(models / "tiny", version=1, trusted=True)
    data = make_dataset_dir(tmp_path / "data")
    assert cli.main(["onnx", "tiny/1", "--data-dir", str(data), "--models-dir",
                     str(models)]) == 0
    assert "ONNX Runtime agrees with TensorFlow on 32 test pictures" in capsys.readouterr().out
    meta = json.loads((version / "metadata.json").read_text())
    assert meta["onnx"]["file"] == ONNX_FILE and meta["test_accuracy"] == 0.1  # kept
    assert (version / ONNX_FILE).is_file()
