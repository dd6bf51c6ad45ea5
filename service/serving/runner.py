"""``serving_default`` run the way TensorFlow Serving runs a SavedModel: its graph in a
Session, every op on the calling thread.

Calling the loaded signature (``tf.saved_model.load(...).signatures[...]``) goes through
TF2's eager function machinery: the arguments are packed in Python, the function is looked
up and its ops go to the inter-op thread pool, a fixed cost per call as large as the
tutorial CNN itself at batch 1. A Session built from the same SavedModel's MetaGraph
(``tf.compat.v1.saved_model.loader``, TF Serving's loader) with
``inter_op_parallelism_threads=-1`` runs each call's ops on the thread that asks (the
inference thread), and ``make_callable`` does the per-call bookkeeping once, in C++.

The Session runs a frozen copy of the graph: variables become constants, so TensorFlow's
graph optimizer (Grappler, run before the first call) folds what depends on the weights
alone (batch normalisation's scale and shift) once, at load time, instead of on every
call. A served version's weights never change, so nothing is lost. Same outputs as the
signature (``tests/service/serving/test_runner.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from service.errors import first_line
from service.serving.calls import in_calls

log = logging.getLogger(__name__)

tf1 = tf.compat.v1


@contextlib.contextmanager
def _quiet_tensorflow() -> Iterator[None]:
    """Hide TF's notes while loading ("loader.load is deprecated", "Restoring
    parameters from ..."): this loader is TF Serving's, used on purpose."""
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_log.setLevel(level)


class SessionRunner:
    """One signature's ``input -> outputs`` of a SavedModel, as a Session callable giving
    the named outputs' arrays.

    ``intra_op_threads``: threads inside one op (0 = TensorFlow's choice). The pool is the
    process's, so every runner in a process shares one size. ``freeze``: run the graph
    with its variables turned into constants (see the module's docstring); ``frozen``
    tells whether that worked (if not, a warning is logged and the graph runs as it is).
    ``call_images``: a bigger batch runs as calls of that many images
    (``service.serving.calls``; None: one call)."""

    def __init__(self, path: Path, signature: str, input_name: str,
                 output_names: Sequence[str], dtype: str, intra_op_threads: int = 0,
                 freeze: bool = True, call_images: int | None = None) -> None:
        config = tf1.ConfigProto(inter_op_parallelism_threads=-1,  # ops on the caller
                                 intra_op_parallelism_threads=intra_op_threads,
                                 allow_soft_placement=True)
        config.gpu_options.allow_growth = True
        graph = tf.Graph()
        self._session = tf1.Session(graph=graph, config=config)
        try:
            with graph.as_default(), _quiet_tensorflow():
                meta = tf1.saved_model.loader.load(self._session, [tf.saved_model.SERVING],
                                                   str(path))
            # protobuf maps: [] on a missing key would create an empty entry, not raise
            if signature not in meta.signature_def:
                raise ValueError(f"no signature {signature!r}")
            sig = meta.signature_def[signature]
            wanted = [("input", input_name, sig.inputs),
                      *(("output", name, sig.outputs) for name in output_names)]
            for kind, key, present in wanted:
                if key not in present:
                    raise ValueError(f"signature {signature!r} has no {kind} {key!r}")
            fetches = [sig.outputs[name].name for name in output_names]
            feed = sig.inputs[input_name].name
            self.frozen = False
            if freeze:
                self._freeze(path, fetches, config)
            self._call = self._session.make_callable(fetches, feed_list=[feed])
        except Exception:
            self._session.close()
            raise
        self._names = tuple(output_names)
        self._dtype = np.dtype(dtype)
        self.call_images = call_images

    def _freeze(self, path: Path, fetches: list[str], config: Any) -> None:
        """Swap the Session for one over a frozen copy of its graph (only what ``fetches``
        need, variables as constants); keep the Session as it is if that fails."""
        try:
            with _quiet_tensorflow():
                graph_def = tf1.graph_util.convert_variables_to_constants(
                    self._session, self._session.graph.as_graph_def(),
                    [f.split(":")[0] for f in fetches])
            graph = tf.Graph()
            with graph.as_default():
                tf1.import_graph_def(graph_def, name="")
        except Exception as exc:  # TF raises many types; the unfrozen graph still works
            log.warning("%s: cannot freeze the graph (%s); running it with its variables",
                        path, first_line(exc, 200))
            return
        self._session.close()
        self._session = tf1.Session(graph=graph, config=config)
        self.frozen = True

    @property
    def graph(self) -> tf.Graph:
        """The graph the Session runs."""
        return self._session.graph

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return in_calls(self._run, images, self.call_images)

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        arrays = self._call(images.astype(self._dtype, copy=False))
        return dict(zip(self._names, arrays, strict=True))

    def close(self) -> None:
        self._session.close()


def session_runner(path: Path, signature: str, input_name: str, output_names: Sequence[str],
                   dtype: str, intra_op_threads: int,
                   call_images: int | None = None) -> SessionRunner | None:
    """A ``SessionRunner``, or None (with a warning) when the SavedModel cannot be run that
    way — e.g. it has no ``serve`` tag; the caller then uses the eager signature."""
    try:
        return SessionRunner(path, signature, input_name, output_names, dtype,
                             intra_op_threads, call_images=call_images)
    except Exception as exc:  # TF raises many types; the eager signature still works
        log.warning("%s: cannot run %s in a Session (%s); calling the loaded signature "
                    "instead", path, signature, first_line(exc, 200))
        return None
