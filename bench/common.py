"""Benchmark plumbing: start servers, drive them with wrk, parse its report.

wrk (Debian package ``wrk``) is the load generator: it is C, so on a 2-core machine it
takes far less CPU from the server under test than a Python client would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).parent / "wrk_post.lua"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx responses plus socket errors


def first_digit() -> bytes:
    """The first fixture digit (PNG bytes): the picture the upload benchmarks send."""
    return sorted((ROOT / "tests" / "fixtures" / "digits").glob("*.png"))[0].read_bytes()


def service_env(port: int, **settings: str) -> dict[str, str]:
    """Environment of ``python -m service`` under a benchmark: the bundled models, no
    polling, quiet logs, on ``port``; ``settings`` are more ``CNNLAB_*`` variables."""
    return {"CNNLAB_MODELS_DIR": str(ROOT / "models"), "CNNLAB_POLL_INTERVAL_S": "0",
            "CNNLAB_LOG_LEVEL": "warning", "CNNLAB_PORT": str(port), **settings}


def p50_ms(fn: Callable[[], object], repeat: int, pause_s: float = 0.0) -> float:
    """Median wall time of ``fn`` in ms over ``repeat`` calls after one warm-up call,
    optionally idling ``pause_s`` before each timed call."""
    fn()
    times = []
    for _ in range(repeat):
        if pause_s:
            time.sleep(pause_s)
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def batch_rate(call_256: Callable[[], object], seconds: float = 4.0) -> float:
    """Images a second of ``call_256`` (256 images a call) in a loop."""
    started = time.perf_counter()
    n = _calls_until(call_256, started + seconds)
    return 256 * n / (time.perf_counter() - started)


def side_by_side_rate(calls_256: list[Callable[[], object]], seconds: float = 4.0) -> float:
    """Images a second of ``calls_256`` (256 images a call) each in a loop of its own
    thread, all at once: as workers run their model sessions side by side."""
    started = time.perf_counter()
    with ThreadPoolExecutor(len(calls_256)) as pool:
        done = sum(pool.map(lambda call: _calls_until(call, started + seconds), calls_256))
    return 256 * done / (time.perf_counter() - started)


def _calls_until(call: Callable[[], object], end: float) -> int:
    """Call ``call`` until ``end`` (``time.perf_counter``); how many calls were made."""
    n = 0
    while time.perf_counter() < end:
        call()
        n += 1
    return n


def onnx_version_arguments(ap: argparse.ArgumentParser, synthetic: bool = False) -> None:
    """``--models-dir``, ``--model`` and ``--version``: the version whose ``model.onnx`` a
    script measures; with ``synthetic``, ``--synthetic SIDE`` instead of them."""
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--model", default="mnist")
    ap.add_argument("--version", type=int, help="default: the newest")
    if synthetic:
        ap.add_argument("--synthetic", type=int, metavar="SIDE",
                        help="a colour CNN of SIDE x SIDE pictures instead of a bundled version")


def onnx_version(args: argparse.Namespace) -> tuple[str, Path]:
    """The version those arguments name (``"model/version"``, its directory); exits when it
    has no ``model.onnx``."""
    from cnnlab.layout import ONNX_FILE, list_versions

    version = args.version or list_versions(args.models_dir / args.model)[-1]
    vdir = args.models_dir / args.model / str(version)
    if not (vdir / ONNX_FILE).is_file():
        sys.exit(f"{vdir} has no {ONNX_FILE} (python -m training reexport writes it)")
    return f"{args.model}/{version}", vdir


@contextlib.contextmanager
def measured_version(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """The version ``onnx_version_arguments(ap, synthetic=True)`` named: a bundled one, or
    a synthetic colour CNN made in a temporary directory for as long as this lasts."""
    if not getattr(args, "synthetic", None):
        yield onnx_version(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield (f"a {args.synthetic} x {args.synthetic} colour CNN",
               synthetic(args.synthetic, Path(tmp) / "version"))


def synthetic(side: int, target: Path) -> Path:
    """A colour CNN of ``side`` x ``side`` pictures with random weights (three conv
    layers), written to ``target`` with its ``model.onnx`` as training writes a version."""
    import keras
    import numpy as np

    from training import export, onnx_export

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((side, side, 3)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax")])
    export.write_saved_model(model, target)
    pictures = np.random.default_rng(0).integers(0, 256, (8, side, side, 3), dtype=np.uint8)
    onnx_export.write(target, pictures)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(cmd: list[str], port: int, ready_path: str, env: dict[str, str] | None = None,
           timeout: float = 180) -> Iterator[tuple[str, int]]:
    """Run a server command until it answers 200 on ``ready_path``; yield its URL and pid."""
    url = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                                    **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd} exited; see {log.name}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url + ready_path, timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd} not ready; see {log.name}")
                time.sleep(0.3)
            yield url, proc.pid
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float = 20) -> None:
    """SIGTERM the server's whole process group and wait until *every* process of it is
    gone (SIGKILL after ``grace_s``). Waiting for the leader alone is not enough: LitServe's
    worker processes outlive their parent for half a minute, polling at ~90 % CPU, and
    would skew whatever is measured next."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    if not _group_gone(proc.pid, grace_s):  # the leader counts until it is a zombie
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if not _group_gone(proc.pid, 10):
            print(f"warning: processes of group {proc.pid} survive SIGKILL", file=sys.stderr)
    proc.wait()


def _group_gone(pgid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` until no live process is left in group ``pgid``."""
    deadline = time.monotonic() + timeout_s
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def group_processes(pgid: int) -> list[Path]:
    """The ``/proc/<pid>`` directories of the live (not zombie) processes in group ``pgid``
    (a server started by ``server``: its leader and every worker it spawned)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(stat.parent)
    return found


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in process group ``pgid``."""
    return bool(group_processes(pgid))


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, body: bytes | None, content_type: str, connections: int, seconds: int,
        threads: int = 1, header: str = "", warmup_s: int = 2) -> WrkResult:
    """POST ``body`` (None: GET) at ``url`` with ``connections`` concurrent connections for
    a while, after ``warmup_s`` seconds of the same load that are not counted (every server
    under test gets the same warm-up: connections open, thread pools and caches hot)."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.NamedTemporaryFile(suffix=".body") as f:
        f.write(body or b"")
        f.flush()
        script = [] if body is None else ["-s", str(LUA)]

        def run(duration: int) -> str:
            return subprocess.run(
                ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration}s",
                 "--timeout", "30s", "--latency", *script, url],
                env={**os.environ, "WRK_BODY": f.name, "WRK_CTYPE": content_type,
                     "WRK_HEADER": header},
                capture_output=True, text=True, check=True).stdout

        if warmup_s > 0:
            run(warmup_s)
        out = run(seconds)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in sock.groups()) if sock else 0)
    return WrkResult(rps, p50, p99, total, errors)
