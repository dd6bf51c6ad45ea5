"""Prometheus metrics, in a registry per app (so tests can run several apps in a process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
            "cnnlab_queue_depth", "images waiting for a batch", ["model", "version"], registry=r)
        self.shed = Counter(
            "cnnlab_shed_total", "requests refused because the queue was full",
            ["model", "version"], registry=r)
        self.load_seconds = Gauge(
            "cnnlab_model_load_seconds", "time to load a version", ["model", "version"],
            registry=r)
        self.warmup_seconds = Gauge(
            "cnnlab_model_warmup_seconds", "time to warm a version up", ["model", "version"],
            registry=r)
        self.versions_loaded = Gauge(
            "cnnlab_model_versions_available", "versions taking traffic", ["model"], registry=r)
        self.load_failures = Counter(
            "cnnlab_model_load_failures_total", "versions that failed to load", ["model"],
            registry=r)
