"""Predictions with ONNX Runtime: chosen for a version with a ``model.onnx`` that agrees
with TensorFlow on its check pictures (under ``auto``, unless TensorFlow is timed the
faster), the same answers as the Session's; TensorFlow when the setting says so, when the
file is missing, broken or disagrees."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from cnnlab.layout import ONNX_FILE
from service.app import create_api
from service.runtime.settings import Settings
from service.serving import choice
from service.serving.choice import Timing
from service.serving.onnx_runner import OnnxRunner
from service.serving.runner import SessionRunner
from service.serving.version import load_version
from tests.helpers import dim_pictures, export_tiny
from training import onnx_export


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trusted tiny version with its model.onnx."""
    version = export_tiny(tmp_path_factory.mktemp("onnx") / "tiny", version=1, seed=3,
                          trusted=True)
    onnx_export.write(version, dim_pictures(32, 9))
    return version


def pictures() -> np.ndarray:
    rng = np.random.default_rng(4)
    return np.concatenate([dim_pictures(8, 4), rng.integers(0, 256, (8, 28, 28, 1),
                                                            dtype=np.uint8)])


def test_both_runtimes_give_the_same_answers(converted: Path) -> None:
    by_onnx = load_version("tiny", 1, converted, "/CPU:0", runtime="onnxruntime")
    by_tf = load_version("tiny", 1, converted, "/CPU:0", runtime="tensorflow")
    try:
        assert isinstance(by_onnx.runner, OnnxRunner) and by_onnx.runs_as == "with ONNX Runtime"
        assert isinstance(by_tf.runner, SessionRunner)
        assert by_onnx.timings == by_tf.timings == {}  # (asked for: not timed)
        x = pictures()
        a, b = by_onnx.predict_sync(x), by_tf.predict_sync(x)
        assert sorted(a) == sorted(b) == ["in_distribution", "ood_score", "probabilities"]
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-5)
        np.testing.assert_array_equal(a["in_distribution"], b["in_distribution"])
        assert b["in_distribution"].any() and not b["in_distribution"].all()  # both kinds
    finally:
        by_onnx.close()
        by_tf.close()


@pytest.mark.parametrize(("tensorflow_ms", "serves"), [
    ((0.5, 20.0), SessionRunner), ((2.0, 20.0), OnnxRunner), ((0.95, 38.0), OnnxRunner)])
def test_auto_on_the_cpu_serves_with_the_runtime_timed_faster(
        converted: Path, monkeypatch: pytest.MonkeyPatch, tensorflow_ms: tuple[float, float],
        serves: type) -> None:
    """ONNX Runtime a picture 1 ms, a full call 40 ms; TensorFlow as given."""
    asked: list[tuple[list[str], tuple[int, ...], int]] = []

    def timed(runs: dict[str, choice.Run], pictures: np.ndarray,
              call_images: int) -> dict[str, Timing]:
        asked.append((sorted(runs), pictures.shape, call_images))
        for run in runs.values():  # both can answer
            assert run(pictures[:2])["probabilities"].shape == (2, 10)
        return {"onnxruntime": Timing(1.0, 40.0, call_images),
                "tensorflow": Timing(*tensorflow_ms, call_images)}

    monkeypatch.setattr(choice, "timed", timed)
    sv = load_version("tiny", 1, converted, "/CPU:0", runtime="auto")
    try:
        # timed on the version's check pictures, a full call as the runner makes them
        assert asked == [(["onnxruntime", "tensorflow"], (32, 28, 28, 1), 64)]
        assert isinstance(sv.runner, serves)
        assert sv.runtime == ("tensorflow" if serves is SessionRunner else "onnxruntime")
        assert sv.runs_as.endswith("the faster at load: onnxruntime a picture 1.00 ms, "
                                   "64 pictures 40.0 ms against tensorflow a picture "
                                   f"{tensorflow_ms[0]:.2f} ms, 64 pictures "
                                   f"{tensorflow_ms[1]:.1f} ms")
        assert sv.runner.call_images == 64
        assert sv.predict_sync(pictures())["probabilities"].shape == (16, 10)
    finally:
        sv.close()


def test_a_gpu_keeps_tensorflow_unless_asked(converted: Path) -> None:
    auto = load_version("tiny", 1, converted, "/GPU:0", runtime="auto")
    forced = load_version("tiny", 1, converted, "/GPU:0", runtime="onnxruntime")
    assert isinstance(auto.runner, SessionRunner) and isinstance(forced.runner, OnnxRunner)
    auto.close()
    forced.close()


@pytest.mark.parametrize("damage", ["another model's", "not an ONNX file"])
def test_a_file_that_cannot_serve_leaves_tensorflow(converted: Path, tmp_path: Path,
                                                    damage: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    version = tmp_path / "1"
    shutil.copytree(converted, version)
    if damage == "not an ONNX file":
        (version / ONNX_FILE).write_bytes(b"garbage")
    else:
        other = export_tiny(tmp_path / "other", version=1, seed=8, trusted=True)
        (version / ONNX_FILE).write_bytes(onnx_export.convert(other).SerializeToString())
    with caplog.at_level(logging.WARNING):
        sv = load_version("tiny", 1, version, "/CPU:0", runtime="auto")
    assert isinstance(sv.runner, SessionRunner)
    assert "predictions run on TensorFlow" in caplog.text
    sv.close()


@pytest.mark.parametrize(("runtime", "batch_threads", "at_once"), [
    ("auto", None, 2), ("tensorflow", None, 2), ("auto", 1, 1), ("tensorflow", 3, 3)])
@pytest.mark.anyio
async def test_two_batches_run_at_once_on_either_runtime_unless_set(
        converted: Path, tmp_path: Path, runtime: str, batch_threads: int | None,
        at_once: int) -> None:
    """Two by default: a worker can then use two cores when another worker has no work
    (an HTTP/2 client's one connection lands on one worker: docs/performance.md)."""
    shutil.copytree(converted, tmp_path / "tiny" / "1")
    settings = Settings(models_dir=tmp_path, poll_interval_s=0, runtime=runtime,
                        **({} if batch_threads is None else {"batch_threads": batch_threads}))
    api = create_api(settings)
    async with api.router.lifespan_context(api):
        served = api.state.plane.repo.resolve("tiny", 1)
        assert served.batcher is not None
        assert served.batcher.max_concurrent_batches == at_once
        # the inference pool runs that many calls at the same time: each waits for the
        # others at a barrier, which breaks (after its timeout) if one cannot start
        barrier = threading.Barrier(at_once, timeout=30)
        executor = api.state.plane.repo.executor
        calls = [asyncio.get_running_loop().run_in_executor(executor, barrier.wait)
                 for _ in range(at_once)]
        assert sorted(await asyncio.gather(*calls)) == list(range(at_once))


def test_a_big_batch_runs_as_calls_of_at_most_call_images_with_the_same_answers(
        converted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    calls: list[int] = []
    run = ort.InferenceSession.run

    def counted(self: ort.InferenceSession, names: object, feed: dict[str, np.ndarray],
                *args: object) -> object:
        calls.append(len(next(iter(feed.values()))))
        return run(self, names, feed, *args)

    names = ["probabilities", "ood_score", "in_distribution"]
    sliced = OnnxRunner(converted / ONNX_FILE, names, "uint8", call_images=5)
    whole = OnnxRunner(converted / ONNX_FILE, names, "uint8")
    try:
        monkeypatch.setattr(ort.InferenceSession, "run", counted)
        x = pictures()  # 16 images
        got = sliced(x)
        assert calls == [5, 5, 5, 1]
        calls.clear()
        want = whole(x)
        assert calls == [16]
        for name in names:  # in order, row for row
            assert got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6)
        calls.clear()
        assert sliced(x[:5])["probabilities"].shape[0] == 5 and calls == [5]
        calls.clear()
        whole(np.resize(x, (130, *x.shape[1:])))  # by default as many as fit calls.CALL_VALUES
        assert calls == [64, 64, 2]
    finally:
        sliced.close()
        whole.close()

