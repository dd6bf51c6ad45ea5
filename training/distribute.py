"""Where training runs: a ``tf.distribute`` strategy, and this process's part in it.

``--strategy`` picks one of TensorFlow's own strategies; nothing here distributes work by
itself:

- ``one``: one device (the first GPU, else the CPU), ``OneDeviceStrategy``;
- ``mirrored``: every GPU of this machine (``MirroredStrategy``; one replica on a CPU);
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` over the processes and hosts that the
  standard ``TF_CONFIG`` environment variable lists (each process is told its own task);
- ``auto``: ``multi-worker`` when ``TF_CONFIG`` lists more than one task, else ``mirrored``
  when more than one GPU is visible, else ``one``.

Only the chief (the ``chief`` task, else worker 0) writes the version, its reports and its
metadata; the other workers take part in every collective step, saving too, and write to
a scratch directory they delete, as TensorFlow's multi-worker guide does.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "one", "mirrored", "multi-worker")


class StrategyError(ValueError):
    """A strategy that cannot run here (e.g. multi-worker without ``TF_CONFIG``)."""


@dataclass(frozen=True)
class Task:
    """This process's place in the cluster ``TF_CONFIG`` describes (one process: chief)."""

    kind: str = "chief"
    index: int = 0
    workers: int = 1        # processes taking part in training
    has_chief: bool = True  # whether the cluster names a chief task (else worker 0 is it)

    @property
    def is_chief(self) -> bool:
        return self.kind == "chief" or (
            self.kind == "worker" and self.index == 0 and not self.has_chief)

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"


def task_from_env() -> Task:
    """This process's task, from ``TF_CONFIG`` (the chief of one when it is unset)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return Task()
    try:
        config = json.loads(raw)
        cluster = config["cluster"]
        kind, index = config["task"]["type"], int(config["task"]["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StrategyError(f"TF_CONFIG is not a cluster spec with a task: {exc}") from None
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "worker"))
    return Task(kind=kind, index=index, workers=workers, has_chief=bool(cluster.get("chief")))


def make_strategy(name: str, task: Task) -> tuple[str, tf.distribute.Strategy]:
    """The strategy ``name`` (one of ``STRATEGIES``), with ``auto`` resolved to the one it
    picked; must run before any tensor exists."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "multi-worker" if task.workers > 1 else "mirrored" if len(gpus) > 1 else "one"
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise StrategyError("--strategy multi-worker needs TF_CONFIG (the cluster and this "
                                "process's task); see the README's training section")
        strategy: tf.distribute.Strategy = _reduce_nests(
            tf.distribute.MultiWorkerMirroredStrategy())
    elif name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.OneDeviceStrategy("/GPU:0" if gpus else "/CPU:0")
    log.info("strategy %s: %d replica(s) in sync; this process is %s%s", name,
             strategy.num_replicas_in_sync, task.name, " (chief)" if task.is_chief else "")
    return name, strategy


def _reduce_nests(strategy: tf.distribute.Strategy) -> tf.distribute.Strategy:
    """Make this strategy's ``reduce`` take what Keras 3's ``fit`` gives it.

    Keras 3 and ``MultiWorkerMirroredStrategy`` do not fit together as released
    (keras-team/keras#20585): ``fit`` reduces the first batch ``(images, labels)`` in one
    call, and this strategy reduces one value at a time (TensorFlow's own "support value
    being a nest" TODO); then it averages each step's metrics over ``axis=0``, and they are
    scalars. So: a nest is reduced value by value, and a scalar across replicas only.
    Only this strategy object is changed."""
    reduce_one = strategy.reduce

    def reduce_value(reduce_op: Any, value: Any, axis: Any) -> Any:
        scalar = all(t.shape.rank == 0 for t in strategy.experimental_local_results(value))
        return reduce_one(reduce_op, value, axis=None if scalar else axis)

    def reduce(reduce_op: Any, value: Any, axis: Any = None) -> Any:
        return tf.nest.map_structure(lambda v: reduce_value(reduce_op, v, axis), value)

    strategy.reduce = reduce  # type: ignore[method-assign]
    return strategy


def shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by data: under multi-worker every worker builds the same pipeline and keeps
    its share of each global batch (the data is in memory, not in files, so TensorFlow's
    default of sharding by file cannot apply)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
