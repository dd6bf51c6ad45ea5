"""All configuration in one place: the only reader of the environment (prefix ``CNNLAB_``)."""

from __future__ import annotations

import ipaddress
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cnnlab.layout import ADMIN_STATE_FILE

# `auto` stops here: a worker per core keeps few cores busy (one Python event loop cannot
# feed TensorFlow on its own), but each worker holds its own TensorFlow heap and models.
MAX_AUTO_WORKERS = 4


class Settings(BaseSettings):
    """Every setting has a default that serves the bundled models on :8000."""

    model_config = SettingsConfigDict(env_prefix="CNNLAB_", env_file=".env", extra="ignore")

    # --- server
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    grpc_port: int = Field(
        default=8500, ge=0, le=65535, description="TF Serving's and the Open Inference "
        "Protocol's gRPC services; 0 = off")
    api_key: SecretStr | None = Field(
        default=None, description="required on every route but health (or the admin key)")
    api_key_file: Path | None = Field(
        default=None, description="a file holding the API key (a mounted Secret); instead "
        "of CNNLAB_API_KEY")
    admin_api_key: SecretStr | None = Field(
        default=None, description="required on admin routes; without it they take the API "
        "key, and without either they are off")
    admin_api_key_file: Path | None = Field(
        default=None, description="a file holding the admin key; instead of "
        "CNNLAB_ADMIN_API_KEY")
    cors_origins: list[str] = Field(default_factory=list, description="CORS off when empty")
    workers: int = Field(
        default="auto", validate_default=True, ge=1,
        description="server processes on the port, each with its own models, batchers and "
        f"event loop; auto = one per usable CPU (at most {MAX_AUTO_WORKERS}) on a CPU-only "
        "host, 1 where an NVIDIA GPU is present")
    run_dir: Path | None = Field(
        default=None, description="set by `python -m service` for its workers: the shared "
        "admin state and metrics files (not a user setting)")

    # --- connections (each worker)
    header_timeout_s: float = Field(
        default=15.0, gt=0, description="a request's headers must arrive within this; else "
        "408 and the connection is closed")
    body_timeout_s: float = Field(
        default=15.0, gt=0, description="longest wait for the next part of a request body "
        "(408)")
    min_body_rate_bytes_s: int = Field(
        default=100_000, ge=1, description="a body must arrive within body_timeout_s plus one "
        "second per this many bytes, however it trickles (408)")
    max_header_bytes: int = Field(
        default=16384, ge=1024, description="request line and headers of one request, "
        "beyond which it is answered 431 and the connection closed")
    keep_alive_timeout_s: int = Field(
        default=5, ge=1, description="an idle keep-alive connection is closed after this")
    max_connections: int = Field(
        default=1024, ge=1, description="open connections per worker, HTTP and gRPC each; "
        "one more HTTP connection is answered 503 + Retry-After and closed, one more gRPC "
        "connection is refused")
    grpc_max_concurrent_rpcs: int = Field(
        default=64, ge=1, description="gRPC calls a worker runs at once; one more is "
        "answered RESOURCE_EXHAUSTED")
    grpc_max_streams_per_connection: int = Field(
        default=64, ge=1, description="concurrent calls on one gRPC connection (HTTP/2 "
        "MAX_CONCURRENT_STREAMS)")
    grpc_idle_timeout_s: float = Field(
        default=300.0, gt=0, description="a gRPC connection without calls is closed after "
        "this")
    grpc_max_connection_age_s: float = Field(
        default=1800.0, gt=0, description="a gRPC connection is asked to go away after "
        "this (calls in flight get 30 s more), so clients re-spread over replicas")

    # --- model repository
    models_dir: Path = Path("models")
    version_policy: str = Field(
        default="latest", description="latest | latest:N | all | specific:1,3 (all models)")
    model_policies: dict[str, str] = Field(
        default_factory=dict, description='per-model policy, e.g. {"mnist": "all"}')
    version_labels: dict[str, dict[str, int]] = Field(
        default_factory=dict, description='e.g. {"mnist": {"stable": 1, "canary": 2}}')
    poll_interval_s: float = Field(default=2.0, ge=0, description="0 disables polling")
    admin_state_file: Path | None = Field(
        default=None, description="what the admin routes set (unloaded models, version "
        "labels), applied by every worker and replica that reads it and kept over restarts;"
        f" default: {ADMIN_STATE_FILE} in models_dir (which must then be writable for admin "
        "changes)")
    warmup: bool = True

    # --- dynamic batching
    max_batch_size: int = Field(
        default=256, ge=1, description="images in one batch; on the CPU it runs as calls "
        "of at most 50,176 input values each (64 MNIST digits; at least one picture a "
        "call): no faster per image beyond, and the runtime keeps memory for its largest "
        "call's tensors")
    max_wait_ms: float = Field(
        default=0.0, ge=0,
        description="how long an idle model waits to fill a batch; batches still form "
                    "from requests that queue while the model is busy")
    max_queue_images: int = Field(default=4096, ge=1)
    request_timeout_s: float = Field(default=30.0, gt=0)
    batch_threads: int = Field(
        default=2, ge=1, description="batches of one model version that run at once "
        "(TF Serving's num_batch_threads)")
    runtime: Literal["auto", "tensorflow", "onnxruntime"] = Field(
        default="auto", description="what runs predictions: auto = ONNX Runtime on the CPU "
        "for versions with a model.onnx that agrees with TensorFlow on their check pictures, "
        "unless TensorFlow is timed clearly faster at load (for a lone picture and a full "
        "call alike); TensorFlow on a GPU or without the file; the inspection routes always "
        "run on TensorFlow")
    tf_intra_op_threads: int = Field(
        default=0, ge=0, description="threads inside one TensorFlow op; 0 = TensorFlow's "
        "choice, or with several workers the CPUs divided among them")
    tf_inter_op_threads: int = Field(
        default=0, ge=0, description="TensorFlow ops run side by side; 0 = as above")
    opencv_threads: int = Field(
        default=1, ge=-1, description="OpenCV's threads for one call; 1 keeps a picture's "
        "work on the thread that asked (requests already run side by side), -1 = OpenCV's "
        "default")

    # --- request budgets (each checked before the work it bounds; docs: README, Limits)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1,
                                  description="bytes of one request body")
    max_body_memory_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="bytes of request bodies and gRPC "
        "messages one worker holds at once (bodies counted as they arrive); a request "
        "beyond it is answered 503 + Retry-After (gRPC: RESOURCE_EXHAUSTED)")
    max_image_pixels: int = Field(default=16_777_216, ge=1,
                                  description="width x height of one picture (from its header)")
    max_request_pixels: int = Field(
        default=16_777_216, ge=1, description="decoded pixels of all a request's pictures "
        "together (from their headers)")
    max_jpeg_scans: int = Field(
        default=10, ge=1, description="passes over its pixels a picture of the whole "
        "request pixel budget may take to decode: a request's pictures' pixels x scans (a "
        "progressive JPEG's scans, counted from its markers; 1 for other pictures), summed, "
        "must fit max_request_pixels x this. Progressive encoders write 6-10 scans")
    max_files: int = Field(default=64, ge=1, description="images per multipart request")
    max_instances: int = Field(default=1024, ge=1, description="images per request (tensors, "
                               "JSON instances, encoded pictures)")
    max_output_values: int = Field(
        default=4_000_000, ge=1, description="numbers a signature call may give back for one "
        "request (inspection signatures over a batch), from its declared output shapes")
    max_operation_cost: int = Field(
        default=2_000_000_000, ge=1, description="image operations (filter, pool, resize, "
        "pipeline): output pixels x channels x window area, summed over the operations")
    max_kernel_size: int = Field(default=15, ge=1, description="custom kernels up to NxN")
    max_pipeline_ops: int = Field(default=10, ge=1)
    max_layers: int = Field(default=32, ge=1, description="layers per activations request")
    max_channels: int = Field(default=512, ge=1, description="channels per layer per request")
    max_json_values: int = Field(default=2_000_000, ge=1,
                                 description="floats in one JSON answer (use .npy beyond)")

    # --- CPU-heavy work (each worker): decoding big pictures, big JSON, image operations
    compute_threads: int = Field(
        default=1, ge=1, description="threads for CPU-heavy request steps (big pictures and "
        "bodies, image operations, big answers); small ones run inline")
    compute_queue: int = Field(
        default=32, ge=0, description="CPU-heavy steps waiting for a thread; one more is "
        "answered 503 + Retry-After")
    inspect_threads: int = Field(
        default=1, ge=1, description="inspection signature calls (activations, Grad-CAM, "
        "filters, other TF Serving signatures) running at once")
    inspect_queue: int = Field(
        default=16, ge=0, description="inspection calls waiting; one more is answered 503 + "
        "Retry-After, so they cannot starve predictions")
    shutdown_delay_s: float = Field(
        default=0.0, ge=0, description="after SIGTERM a worker keeps serving this long first, "
        "with /health/ready at 503 and every connection closed after its answer, so "
        "balancers take it out before it stops listening (as a Kubernetes preStop sleep)")
    shutdown_grace_s: float = Field(
        default=30.0, gt=0, description="then it finishes in-flight requests for at most "
        "this long, and is ended")

    # --- capture and feedback (service.capture; README, Learning from traffic)
    capture_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of upload requests whose pictures are "
        "stored for feedback and fine-tuning; 0 = off (the default: uploads may be private)")
    capture_url: str = Field(
        default="", description="SQLAlchemy URL of the capture store (e.g. "
        "postgresql+psycopg://user:pass@host/db for several replicas); empty = the SQLite "
        "file capture_dir/captures.db, shared by the workers of one host")
    capture_dir: Path = Path("captures")
    capture_max_rows: int = Field(
        default=100_000, ge=1, description="pictures kept; the oldest go first")
    capture_max_days: float | None = Field(
        default=30.0, gt=0, description="pictures older than this are deleted")
    capture_queue_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="bytes of pictures (as uploaded, and as "
        "the model saw them) waiting to be written, per worker; beyond it pictures are "
        "dropped (cnnlab_captures_dropped_total), never the prediction")

    def admin_state_path(self) -> Path:
        return self.admin_state_file or self.models_dir / ADMIN_STATE_FILE

    def capture_store_url(self) -> str:
        return self.capture_url or f"sqlite:///{self.capture_dir / 'captures.db'}"

    def tf_threads(self) -> tuple[int, int]:
        """(intra-op, inter-op) threads for TensorFlow; 0 = its own choice. Workers split
        the CPUs, so a batch never waits for another process's thread. Only processes
        started as workers by ``python -m service`` (which sets ``run_dir``) split them:
        an app built any other way (``uvicorn --factory`` by hand, in tests) is alone."""
        pooled = self.workers > 1 and self.run_dir is not None
        share = max(1, usable_cpus() // self.workers) if pooled else 0
        return self.tf_intra_op_threads or share, self.tf_inter_op_threads or share

    @model_validator(mode="after")
    def _keys_from_files(self) -> Settings:
        """Keys named by a file path are read from it (surrounding whitespace dropped); an
        empty key is no key."""
        for key, path in (("api_key", self.api_key_file),
                          ("admin_api_key", self.admin_api_key_file)):
            value = getattr(self, key)
            if value is not None and not value.get_secret_value().strip():
                setattr(self, key, None)
            if path is None:
                continue
            if getattr(self, key) is not None:
                raise ValueError(f"set CNNLAB_{key.upper()} or CNNLAB_{key.upper()}_FILE, "
                                 "not both")
            try:
                secret = path.read_text().strip()
            except OSError as exc:
                raise ValueError(f"CNNLAB_{key.upper()}_FILE: cannot read {path}: "
                                 f"{exc.strerror}") from None
            if not secret:
                raise ValueError(f"CNNLAB_{key.upper()}_FILE: {path} is empty")
            setattr(self, key, SecretStr(secret))
        return self

    def exposed_without_key(self) -> bool:
        """Whether the service listens beyond loopback with no API key."""
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name
            loopback = self.host == "localhost"
        return not loopback and self.key() is None

    def key(self, *, admin: bool = False) -> str | None:
        """The key a call must present: the admin key for admin calls when one is set,
        else the API key; None when no key guards such calls."""
        chosen = (self.admin_api_key or self.api_key) if admin else self.api_key
        return chosen.get_secret_value() if chosen is not None else None

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return auto_workers()
        return value


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity (cpusets, taskset), lowered to a
    cgroup v2 CPU quota when there is one (``docker --cpus=2`` on a big host: 2)."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def cgroup_cpu_quota(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> float | None:
    """CPUs' worth of time the cgroup may use (``cpu.max`` = "quota period"), None when
    unlimited or unknown."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return int(quota) / int(period)


def gpu_present(driver_dir: Path = Path("/proc/driver/nvidia/gpus")) -> bool:
    """Whether the NVIDIA driver lists a GPU (read without importing TensorFlow: the
    supervisor of several workers never does)."""
    try:
        return any(driver_dir.iterdir())
    except OSError:
        return False


def auto_workers() -> int:
    """``CNNLAB_WORKERS=auto``: 1 on a GPU host, else one per usable CPU, at most
    ``MAX_AUTO_WORKERS``."""
    return 1 if gpu_present() else min(usable_cpus(), MAX_AUTO_WORKERS)


@lru_cache
def get_settings() -> Settings:
    return Settings()
