"""Prometheus metrics, in a registry per app (so tests can run several apps in a process).

With several worker processes (``CNNLAB_WORKERS``), ``python -m service`` points
prometheus-client's multiprocess mode at a directory of the run (``PROMETHEUS_MULTIPROC_DIR``,
set before any worker starts): every worker writes its values there, and ``/metrics``, on
whichever worker answers, adds them up. Gauges say how: queue depths add up over live
workers, per-version figures take the largest."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.balance import read_counts
from service.workers import pid_alive

if getattr(values.ValueClass, "_multiprocess", False):
    # One of several workers: prometheus-client's multiprocess values call os.getpid(), a
    # system call, on every update to notice a fork (py-spy --gil: 4.6 % of a worker's
    # Python time under load). Workers are spawned, never forked, so the pid is read once.
    _PID = os.getpid()
    values.ValueClass = values.MultiProcessValue(lambda: _PID)

_PID_FILE = re.compile(r"_(\d+)\.db$")  # prometheus-client's <kind>_<pid>.db
_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "cnnlab_requests_total", "HTTP requests served",
            ["route", "method", "model", "version", "status"], registry=r)
        self.latency = Histogram(
            "cnnlab_request_duration_seconds", "HTTP request latency",
            ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "cnnlab_batch_size", "images per signature call", ["model", "version"],
            buckets=_BATCH_BUCKETS, registry=r)
        self.inference = Histogram(
            "cnnlab_inference_seconds", "signature call time per batch", ["model", "version"],
            buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "cnnlab_queue_depth", "images waiting for a batch", ["model", "version"], registry=r,
            multiprocess_mode="livesum")
        self.shed = Counter(
            "cnnlab_shed_total", "requests refused because the queue was full",
            ["model", "version"], registry=r)
        self.load_seconds = Gauge(
            "cnnlab_model_load_seconds", "time to load a version", ["model", "version"],
            registry=r, multiprocess_mode="max")
        self.warmup_seconds = Gauge(
            "cnnlab_model_warmup_seconds", "time to warm a version up", ["model", "version"],
            registry=r, multiprocess_mode="max")
        self.versions_loaded = Gauge(
            "cnnlab_model_versions_available", "versions taking traffic", ["model"], registry=r,
            multiprocess_mode="livemax")
        self.load_failures = Counter(
            "cnnlab_model_load_failures_total", "versions that failed to load", ["model"],
            registry=r)


class WorkerConnections(Collector):
    """Open client connections of each worker, as they publish them for taking new ones
    in turn (``service.balance``): shows how evenly the workers share the clients."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("cnnlab_worker_open_connections",
                                   "open client connections per worker process", labels=["pid"])
        for pid, count in sorted(read_counts(self.directory).items()):
            family.add_metric([str(pid)], count)
        yield family


def exposition(metrics: Metrics, multiproc_dir: Path | None,
               connections_dir: Path | None = None) -> bytes:
    """The text for ``/metrics``: this app's registry, or every worker's values added up
    (and, given ``connections_dir``, each worker's open connections)."""
    if multiproc_dir is None:
        return generate_latest(metrics.registry)
    forget_dead_workers(multiproc_dir)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiproc_dir))
    if connections_dir is not None:
        registry.register(WorkerConnections(connections_dir))
    return generate_latest(registry)


def forget_dead_workers(multiproc_dir: Path) -> None:
    """Drop the live gauges of workers that died without saying so (SIGKILL, a crash:
    uvicorn's supervisor replaces them but has no hook to clean up after them)."""
    pids = {int(m[1]) for p in multiproc_dir.glob("gauge_live*_*.db")
            if (m := _PID_FILE.search(p.name))}
    for pid in pids:
        if not pid_alive(pid):
            multiprocess.mark_process_dead(pid, str(multiproc_dir))


def worker_exited(multiproc_dir: Path | None) -> None:
    """Drop this worker's live gauges (queue depth, versions) from the sums."""
    if multiproc_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), str(multiproc_dir))
