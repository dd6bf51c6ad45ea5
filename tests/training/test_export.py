from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ROOT, tiny_keras_model
from tests.training.test_data import make_dataset_dir
from training import export, train
from training.config import resolve
from training.data import load


def test_serving_default_equals_the_keras_model(tmp_path: Path) -> None:
    model = tiny_keras_model()
    export.write_saved_model(model, tmp_path / "m")
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    x = np.random.default_rng(1).integers(0, 256, (5, 28, 28, 1)).astype(np.uint8)
    got = loaded.signatures["serving_default"](image=tf.constant(x))["probabilities"].numpy()
    want = model.predict(x.astype("float32"), verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_activations_are_keyed_by_layer_name(tmp_path: Path) -> None:
    model = tiny_keras_model()
    export.write_saved_model(model, tmp_path / "m")
    sig = tf.saved_model.load(str(tmp_path / "m")).signatures["activations"]
    out = sig(image=tf.zeros([1, 28, 28, 1], tf.uint8))
    assert set(out) == {layer.name for layer in model.layers}
    assert out["conv1"].shape == (1, 26, 26, 4)


def test_gradcam_and_filters_signatures(tmp_path: Path) -> None:
    model = tiny_keras_model()
    export.write_saved_model(model, tmp_path / "m")
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    x = np.random.default_rng(2).integers(0, 256, (2, 28, 28, 1)).astype(np.uint8)
    out = loaded.signatures["gradcam"](image=tf.constant(x),
                                       class_index=tf.constant([-1, 3], tf.int32))
    predicted = model.predict(x.astype("float32"), verbose=0).argmax(axis=1)
    assert out["class_index"].numpy().tolist() == [predicted[0], 3]
    cam = out["gradcam/conv1"].numpy()
    assert cam.shape == (2, 26, 26) and cam.min() >= 0 and cam.max() <= 1
    # the signed input gradient of log p(class), as Keras computes it; saliency is its size
    images = tf.constant(x.astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(images)
        log_p = tf.math.log(tf.gather(model(images), [predicted[0], 3], batch_dims=1))
    np.testing.assert_allclose(out["gradient"].numpy(), tape.gradient(log_p, images).numpy(),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(out["saliency"].numpy(), np.abs(out["gradient"].numpy())[..., 0])
    kernels = loaded.signatures["filters"]()
    np.testing.assert_array_equal(kernels["conv1"].numpy(), model.get_layer("conv1").kernel)


def test_interrupted_export_leaves_no_version(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path / "data"))
    cfg = resolve("mnist", "mlp20", {"epochs": 1, "models_dir": tmp_path / "models",
                                     "validation": "test"})

    def boom(*_: object, **__: object) -> None:
        raise KeyboardInterrupt  # as if Ctrl-C arrived while reports were written

    monkeypatch.setattr(train, "write_reports", boom)
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg, ds)
    # no version and no staging folder; the run's backup stays, so running the same
    # command again only exports
    assert [p.name for p in (tmp_path / "models" / "mnist").iterdir()] == [".checkpoints"]
    monkeypatch.undo()
    result = train.train(cfg, ds)
    assert result is not None and result.version == 1
    assert result.metadata["resumed_at_epoch"] == 1 and result.metadata["epochs_run"] == 1
    assert [p.name for p in (tmp_path / "models" / "mnist").iterdir()] == ["1"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_train_list_evaluate_round_trip(tmp_path: Path) -> None:
    data_dir = make_dataset_dir(tmp_path / "data", n_train=128, n_test=64)
    models = tmp_path / "models"
    common = ["--data-dir", str(data_dir), "--models-dir", str(models)]
    for expected_version in (1, 2):
        proc = run_cli("train", "mnist", "--arch", "cnn1", "--epochs", "2",
                       "--batch-size", "32", "--stop-at-accuracy", "0.0", *common)
        assert proc.returncode == 0, proc.stderr
        assert f"Exported mnist version {expected_version}" in proc.stdout
        # cnn1 holds out 0.33 of the training set: the header says what it trains on
        assert "Training cnn1 on mnist: 85 train / 43 validation / 64 test images" \
            in proc.stdout
        written = models / "mnist" / str(expected_version) / "reports"
        assert f"reports ({len(list(written.iterdir()))} files): {written}" in proc.stdout
    meta = json.loads((models / "mnist" / "2" / "metadata.json").read_text())
    assert meta["arch"] == "cnn1" and meta["epochs_run"] == 1  # stopped after epoch 1
    assert meta["stopped_early_at_epoch"] == 1
    assert len(meta["confusion_matrix"]) == 10
    assert sum(map(sum, meta["confusion_matrix"])) == 64
    assert [row["name"] for row in meta["layers"]][:3] == ["rescale", "conv1", "pool1"]
    reports = {p.name for p in (models / "mnist" / "2" / "reports").iterdir()}
    assert {"training_curves.png", "confusion_matrix.png", "filters.png",
            "misclassified.png", "feature_maps_conv1.png"} <= reports

    listed = run_cli("list", "--models-dir", str(models))
    assert listed.returncode == 0
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [("mnist", "1", "cnn1"), ("mnist", "2", "cnn1")]

    ev = run_cli("evaluate", "mnist/2", "--json", *common)
    assert ev.returncode == 0, ev.stderr
    scores = json.loads(ev.stdout)
    assert scores["test_accuracy"] == pytest.approx(meta["test_accuracy"])
    assert scores["test_ece"] == pytest.approx(meta["test_ece"])
    # --record writes the scores into a version that lacks one (exported before ECE was)
    stale = {k: v for k, v in meta.items() if k != "test_ece"}
    (models / "mnist" / "2" / "metadata.json").write_text(json.dumps(stale))
    assert run_cli("evaluate", "mnist/2", "--record", *common).returncode == 0
    recorded = json.loads((models / "mnist" / "2" / "metadata.json").read_text())
    assert recorded == {**stale, **scores}

    missing = run_cli("evaluate", "mnist/9", *common)
    assert missing.returncode == 2 and "has no version '9'" in missing.stderr

    again = run_cli("reexport", "mnist/2", *common)
    assert again.returncode == 0, again.stderr
    assert "as version 3" in again.stdout and "temperature" in again.stdout
    meta3 = json.loads((models / "mnist" / "3" / "metadata.json").read_text())
    assert meta3["reexported_from"] == 2 and (models / "mnist" / "3" / "reports").is_dir()
    # re-exported with a calibration and an OOD score, fitted on the version's data
    assert meta3["calibration"]["temperature"] > 0 and meta3["ood"]["threshold"] > 0
    assert "ood_score" in tf.saved_model.load(str(models / "mnist" / "3")).signatures[
        "serving_default"].structured_outputs
    ev3 = run_cli("evaluate", "mnist/3", "--json", *common)
    assert json.loads(ev3.stdout)["test_accuracy"] == pytest.approx(meta["test_accuracy"])
