"""Prometheus metrics, in a registry per app (so tests can run several apps in a process).

With several worker processes, ``python -m service`` points prometheus-client's documented
multiprocess mode at a directory of the run (``PROMETHEUS_MULTIPROC_DIR``, set before any
worker starts): every worker writes its values there, and ``/metrics``, on whichever worker
answers, adds them up. Gauges say how: queue depths add up over live workers, per-version
figures take the largest, the admin state generation the lowest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

ADMIN_GENERATION = "cnnlab_admin_state_generation"
LAST_INFERENCE = "cnnlab_last_inference_timestamp_seconds"
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
        self.queue_wait = Histogram(
            "cnnlab_queue_seconds", "time a request waited for its batch", ["model", "version"],
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
        self.last_inference = Gauge(
            LAST_INFERENCE, "when a version last ran a batch (Unix time)",
            ["model", "version"], registry=r, multiprocess_mode="max")
        self.versions_loaded = Gauge(
            "cnnlab_model_versions_available", "versions taking traffic", ["model"], registry=r,
            multiprocess_mode="livemax")
        self.load_failures = Counter(
            "cnnlab_model_load_failures_total", "versions that failed to load", ["model"],
            registry=r)
        self.captured = Counter(
            "cnnlab_captures_total", "uploaded pictures stored by capture", registry=r)
        self.capture_dropped = Counter(
            "cnnlab_captures_dropped_total", "sampled pictures not stored (the store was "
            "slow or failing)", registry=r)
        self.feedback_labelled = Gauge(
            "cnnlab_feedback_labelled", "captured pictures given their true class",
            ["model", "version"], registry=r, multiprocess_mode="mostrecent")
        self.feedback_accuracy = Gauge(
            "cnnlab_feedback_accuracy", "accuracy on the labelled captures",
            ["model", "version"], registry=r, multiprocess_mode="mostrecent")
        self.feedback_ood_rate = Gauge(
            "cnnlab_feedback_ood_rate", "share of the labelled captures the version called "
            "not in distribution", ["model", "version"], registry=r,
            multiprocess_mode="mostrecent")
        self.admin_generation = Gauge(
            ADMIN_GENERATION, "admin state generation applied (with several workers: the "
            "lowest of them)", registry=r, multiprocess_mode="livemin")


def exposition(metrics: Metrics, multiproc_dir: Path | None) -> bytes:
    """The text for ``/metrics``: this app's registry, or every worker's values added up."""
    return generate_latest(_registry(metrics, multiproc_dir))


def _registry(metrics: Metrics, multiproc_dir: Path | None) -> CollectorRegistry:
    """This app's registry, or one that reads every worker's values."""
    return metrics.registry if multiproc_dir is None else _workers_registry(multiproc_dir)


def _workers_registry(multiproc_dir: Path) -> CollectorRegistry:
    """A registry that reads every worker's values from ``multiproc_dir``."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiproc_dir))
    return registry


def version_totals(metrics: Metrics, multiproc_dir: Path | None, model: str,
                   version: str) -> dict[str, float]:
    """The sums and counts of one model version's histograms (``cnnlab_batch_size_sum``,
    ``cnnlab_inference_seconds_count``, ...), over every worker, and when it last ran
    (``LAST_INFERENCE``, the latest of them)."""
    totals: dict[str, float] = {}
    for family in _registry(metrics, multiproc_dir).collect():
        for sample in family.samples:
            if (sample.labels.get("model") != model
                    or sample.labels.get("version") != version):
                continue
            if sample.name.endswith(("_sum", "_count")):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
            elif sample.name == LAST_INFERENCE:
                totals[LAST_INFERENCE] = max(totals.get(LAST_INFERENCE, 0.0), sample.value)
    return totals


def applied_generation(multiproc_dir: Path) -> int:
    """The admin state generation every live worker has applied."""
    for family in _workers_registry(multiproc_dir).collect():
        if family.name == ADMIN_GENERATION:
            return int(min((s.value for s in family.samples), default=0))
    return 0


def worker_exited(multiproc_dir: Path | None, pid: int) -> None:
    """Drop a worker's live gauges (queue depth, versions, generation) from the sums."""
    if multiproc_dir is not None:
        multiprocess.mark_process_dead(pid, str(multiproc_dir))
