"""Training on tf.distribute: TF_CONFIG read as TensorFlow reads it, the strategy picked,
and two worker processes on loopback publishing exactly one version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ROOT, free_port
from tests.training.test_data import make_dataset_dir
from training import distribute, train
from training.config import resolve
from training.data import load


def cluster(kind: str, index: int, *, chief: bool) -> str:
    spec = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    if chief:
        spec["chief"] = ["127.0.0.1:3"]
    return json.dumps({"cluster": spec, "task": {"type": kind, "index": index}})


@pytest.mark.parametrize(("tf_config", "name", "is_chief", "workers"), [
    (None, "chief-0", True, 1),
    (cluster("worker", 0, chief=False), "worker-0", True, 2),   # worker 0 leads
    (cluster("worker", 1, chief=False), "worker-1", False, 2),
    (cluster("worker", 0, chief=True), "worker-0", False, 3),   # the chief leads
    (cluster("chief", 0, chief=True), "chief-0", True, 3),
])
def test_task_from_tf_config(monkeypatch: pytest.MonkeyPatch, tf_config: str | None,
                             name: str, is_chief: bool, workers: int) -> None:
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    task = distribute.task_from_env()
    assert (task.name, task.is_chief, task.workers) == (name, is_chief, workers)


def test_bad_tf_config_and_strategies_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(distribute.StrategyError, match="TF_CONFIG"):
        distribute.task_from_env()
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(distribute.StrategyError, match="needs TF_CONFIG"):
        distribute.make_strategy("multi-worker", distribute.Task())
    with pytest.raises(distribute.StrategyError, match="unknown strategy"):
        distribute.make_strategy("parameter-server", distribute.Task())


def test_auto_is_one_device_on_a_machine_without_gpus() -> None:
    name, strategy = distribute.make_strategy("auto", distribute.Task())
    assert name == "one" and isinstance(strategy, tf.distribute.OneDeviceStrategy)


def _answers(version_dir: Path) -> np.ndarray:
    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    probs = fn(image=tf.zeros([2, 28, 28, 1], tf.uint8))["probabilities"].numpy()
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
    return probs


def test_mirrored_on_cpu_trains_and_exports(tmp_path: Path) -> None:
    ds = load("mnist", make_dataset_dir(tmp_path / "data"))
    cfg = resolve("mnist", "cnn1", {"epochs": 1, "batch_size": 16, "strategy": "mirrored",
                                    "models_dir": tmp_path / "models"})
    result = train.train(cfg, ds)
    assert result is not None
    assert result.metadata["distribution"] == {
        "strategy": "mirrored", "replicas": 1, "workers": 1, "global_batch_size": 16}
    _answers(result.path)


def test_two_workers_on_loopback_publish_exactly_one_version(tmp_path: Path) -> None:
    data = make_dataset_dir(tmp_path / "data", n_train=256, n_test=64)
    models = tmp_path / "models"
    hosts = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "training", "train", "mnist", "--arch", "cnn1",
             "--epochs", "2", "--batch-size", "16", "--strategy", "multi-worker",
             "--validation-split", "test",
             "--data-dir", str(data), "--models-dir", str(models)],
            cwd=ROOT, env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "Exported mnist version 1" in outputs[0]
    assert "the chief publishes the version" in outputs[1]
    # one version, nothing staged or backed up left behind
    assert [p.name for p in (models / "mnist").iterdir()] == ["1"]
    meta = json.loads((models / "mnist" / "1" / "metadata.json").read_text())
    assert meta["distribution"] == {"strategy": "multi-worker", "replicas": 2,
                                    "workers": 2, "global_batch_size": 32}
    # each step took one global batch from the two workers' shards: 256 / 32 steps
    assert meta["epochs_run"] == 2 and "8/8" in outputs[0]
    _answers(models / "mnist" / "1")
