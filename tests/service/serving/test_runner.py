"""serving_default in a Session (service.runner): the same outputs as the loaded signature,
its graph frozen or not, a fallback when the SavedModel cannot be run that way (or frozen),
and a version that frees it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from service.serving.runner import SessionRunner, session_runner
from service.serving.version import PREDICT_SIGNATURE, load_version
from tests.helpers import export_tiny


class Brightness(tf.Module):
    """A float-input model exported elsewhere: input ``x``, output ``scores``."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": tf.stack([tf.reduce_mean(x, [1, 2, 3]), tf.reduce_max(x, [1, 2, 3])],
                                   axis=1)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny(tmp_path_factory.mktemp("runner") / "tiny", version=1, seed=3)


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny version with calibrated probabilities and an OOD score: three outputs."""
    return export_tiny(tmp_path_factory.mktemp("runner") / "trusted", version=1, seed=3,
                       trusted=True)


@pytest.mark.parametrize("freeze", [False, True])
@pytest.mark.parametrize("n", [1, 5, 64])
def test_session_gives_the_signatures_outputs(trusted: Path, n: int, freeze: bool) -> None:
    names = ["in_distribution", "ood_score", "probabilities"]
    runner = SessionRunner(trusted, PREDICT_SIGNATURE, "image", names, "uint8",
                           freeze=freeze)
    assert runner.frozen == freeze
    images = _images(n, n)
    signature = tf.saved_model.load(str(trusted)).signatures[PREDICT_SIGNATURE]
    expected = signature(image=tf.constant(images))
    got = runner(images)
    runner.close()
    assert sorted(got) == names
    assert got["probabilities"].shape == (n, 10) and got["ood_score"].shape == (n,)
    for name in names:
        np.testing.assert_allclose(got[name], expected[name].numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(got["probabilities"], got["probabilities"][::-1]) or n == 1


def _variable_ops(graph_def: tf.compat.v1.GraphDef) -> set[str]:
    """The variable ops a graph runs, in the bodies of the functions it calls included
    (its library also keeps the SavedModel's other functions, which it never calls)."""
    bodies = {fn.signature.name: list(fn.node_def) for fn in graph_def.library.function}
    ops: set[str] = set()
    nodes, seen = list(graph_def.node), set()
    while nodes:
        node = nodes.pop()
        ops.add(node.op)
        called = node.attr["f"].func.name if "f" in node.attr else ""
        if called and called not in seen:
            seen.add(called)
            nodes.extend(bodies[called])
    return ops & {"VarHandleOp", "ReadVariableOp", "VariableV2", "ResourceGather"}


def test_a_frozen_graph_reads_no_variables(tiny: Path) -> None:
    plain = SessionRunner(tiny, PREDICT_SIGNATURE, "image", ["probabilities"], "uint8",
                          freeze=False)
    frozen = SessionRunner(tiny, PREDICT_SIGNATURE, "image", ["probabilities"], "uint8",
                           freeze=True)
    assert _variable_ops(plain.graph.as_graph_def()) >= {"VarHandleOp", "ReadVariableOp"}
    assert _variable_ops(frozen.graph.as_graph_def()) == set()
    plain.close()
    frozen.close()


def test_a_graph_that_cannot_be_frozen_runs_as_it_is(
        tiny: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("cannot convert this op")

    monkeypatch.setattr(tf.compat.v1.graph_util, "convert_variables_to_constants", refuse)
    with caplog.at_level(logging.WARNING, logger="service.serving.runner"):
        runner = SessionRunner(tiny, PREDICT_SIGNATURE, "image", ["probabilities"], "uint8",
                               freeze=True)
    assert not runner.frozen and "cannot freeze the graph (cannot convert" in caplog.text
    images = _images(2, 11)
    expected = tf.saved_model.load(str(tiny)).signatures[PREDICT_SIGNATURE](
        image=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(runner(images)["probabilities"], expected, rtol=1e-5,
                               atol=1e-7)
    runner.close()


@pytest.mark.parametrize("freeze", [False, True])
def test_input_is_cast_to_the_models_dtype(tmp_path: Path, freeze: bool) -> None:
    module = Brightness()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serve})
    runner = SessionRunner(tmp_path / "1", PREDICT_SIGNATURE, "x", ["scores"], "float32",
                           freeze=freeze)
    pixels = np.arange(32, dtype=np.uint8).reshape(2, 4, 4, 1)
    out = runner(pixels)
    runner.close()
    np.testing.assert_allclose(out["scores"], [[7.5, 15], [23.5, 31]])


@pytest.mark.parametrize(("signature", "input_name", "output_name", "missing"), [
    ("no_such_signature", "image", "probabilities", "no signature 'no_such_signature'"),
    (PREDICT_SIGNATURE, "pixels", "probabilities", "no input 'pixels'"),
    (PREDICT_SIGNATURE, "image", "logits", "no output 'logits'"),
])
def test_unusable_signature_falls_back_with_a_warning(
        tiny: Path, caplog: pytest.LogCaptureFixture, signature: str, input_name: str,
        output_name: str, missing: str) -> None:
    with caplog.at_level(logging.WARNING, logger="service.serving.runner"):
        runner = session_runner(tiny, signature, input_name, [output_name], "uint8", 0)
    assert runner is None
    assert missing in caplog.text and "calling the loaded signature instead" in caplog.text


def test_a_version_predicts_in_a_frozen_session_and_frees_it(tiny: Path) -> None:
    version = load_version("tiny", 1, tiny, "/CPU:0")
    assert version.runner is not None and version.runner.frozen
    images = _images(3, 7)
    signature = version.signatures[PREDICT_SIGNATURE]
    expected = signature(image=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(version.predict_sync(images)["probabilities"], expected,
                               rtol=1e-5, atol=1e-7)
    runner = version.runner
    version.close()
    assert version.runner is None
    with pytest.raises(RuntimeError):  # the Session is closed ...
        runner(images)
    # ... and the loaded SavedModel let go (tests/service/serving/test_unload.py)
    assert version.module is None and version.signatures == {}


def test_a_session_runs_a_big_batch_as_calls_of_call_images(trusted: Path) -> None:
    names = ["in_distribution", "ood_score", "probabilities"]
    sliced = SessionRunner(trusted, PREDICT_SIGNATURE, "image", names, "uint8", call_images=5)
    whole = SessionRunner(trusted, PREDICT_SIGNATURE, "image", names, "uint8")
    sizes: list[int] = []
    run = sliced._run  # (counted, to see the calls)
    sliced._run = lambda images: sizes.append(len(images)) or run(images)  # type: ignore[method-assign]
    try:
        images = _images(16, 8)
        got, want = sliced(images), whole(images)
        assert sizes == [5, 5, 5, 1]
        for name in names:  # in order, row for row
            np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6)
    finally:
        sliced.close()
        whole.close()


@pytest.mark.parametrize(("device", "call_images"), [("/CPU:0", 64), ("/GPU:0", None)])
def test_on_the_cpu_a_call_holds_what_fits_call_values_and_a_gpu_takes_the_batch_whole(
        tiny: Path, device: str, call_images: int | None) -> None:
    version = load_version("tiny", 1, tiny, device, runtime="tensorflow")
    try:
        assert isinstance(version.runner, SessionRunner)
        assert version.runner.call_images == call_images  # 28 x 28 x 1: 64 a call
    finally:
        version.close()
