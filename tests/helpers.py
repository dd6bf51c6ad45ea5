"""Shared test helpers: tiny exported models and a real uvicorn server process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
BUNDLED_MODELS = ROOT / "models"
MIB = 1024 * 1024


def tiny_keras_model(seed: int = 0, filters: int = 4):  # type: ignore[no-untyped-def]
    """A small CNN in the same mould as training.architectures (rescale inside)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1), name="image"),
        keras.layers.Rescaling(1 / 255, name="rescale"),
        keras.layers.Conv2D(filters, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(2, name="pool1"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, activation="softmax", name="probs"),
    ], name="tiny")


def dim_pictures(n: int, seed: int) -> np.ndarray:
    """``n`` dim noisy pictures ``[n,28,28,1]`` (pixels 0..39): a trusted tiny model's
    training data, so anything bright is unlike it."""
    return np.random.default_rng(seed).integers(0, 40, (n, 28, 28, 1), dtype=np.uint8)


def tiny_trust(model: Any, picture: bool = False, energy: bool = False) -> Any:
    """``training.trust.Trust`` of a tiny model fitted on ``dim_pictures`` (random labels);
    ``picture``: the score reads the picture itself too; ``energy``: with the energy term."""
    from training import trust

    rng = np.random.default_rng(1)

    def split(n: int, seed: int) -> Any:
        return trust.Pictures.of({"as stored": (dim_pictures(n, seed),
                                                rng.integers(0, 10, n))})

    return trust.fit(model, split(600, 1), split(200, 2), split(200, 3),
                     held_name="held", check_name="check", picture=picture,
                     with_energy=energy)


def export_tiny(model_dir: Path, version: int | None = None, seed: int = 0,
                trusted: bool = False, picture: bool = False, energy: bool = False) -> Path:
    """Export a tiny model as a (next) version of ``model_dir``, atomically; ``trusted``:
    with a temperature and an OOD score (``tiny_trust``, reading the ``picture`` too)."""
    from training import export

    staged = export.staging_dir(model_dir)
    model = tiny_keras_model(seed)
    fitted = tiny_trust(model, picture, energy) if trusted else None
    export.write_saved_model(model, staged, fitted)
    (staged / "metadata.json").write_text(json.dumps({
        "dataset": "mnist", "class_names": [str(i) for i in range(10)],
        "input_shape": [28, 28, 1], "arch": "tiny", "test_accuracy": 0.1,
        **(fitted.to_json() if fitted else {})}))
    if version is None:
        return export.publish(staged, model_dir)[1]
    final = model_dir / str(version)
    staged.rename(final)
    return final


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


# the service without its lean dispatch: every route through FastAPI (``app=`` of run_server)
FASTAPI_ONLY = "tests.helpers:fastapi_only_app"


def fastapi_only_app() -> Any:
    from service.app import create_api, with_plumbing
    from service.runtime.settings import get_settings

    settings = get_settings()
    api = create_api(settings)
    return with_plumbing(api, api, settings)


@contextlib.contextmanager
def run_server(models_dir: Path, tmp: Path, wait_ready: bool = True, app: str | None = None,
               **env: str) -> Iterator[Server]:
    """Start ``python -m service`` (or uvicorn with the factory ``app``) on a loopback port
    (free unless ``port`` is given); SIGTERM it afterwards. Other keyword arguments become
    ``CNNLAB_<NAME>`` settings; one worker process unless ``workers`` is given (the
    default, auto, depends on the host). The admin state is kept in ``tmp`` unless
    ``admin_state_file`` is given, so no test leaves one in a shared models directory."""
    port = int(env.pop("port")) if "port" in env else free_port()
    env.setdefault("admin_state_file", str(tmp / f"admin-state-{port}.json"))
    full_env = {**os.environ, "CNNLAB_MODELS_DIR": str(models_dir), "CNNLAB_PORT": str(port),
                "CNNLAB_HOST": "127.0.0.1", "CNNLAB_POLL_INTERVAL_S": "0", "CNNLAB_WORKERS": "1",
                "CNNLAB_GRPC_PORT": "0",
                "TF_CPP_MIN_LOG_LEVEL": "2", **{f"CNNLAB_{k.upper()}": v for k, v in env.items()}}
    log = tmp / f"server-{port}.log"
    with log.open("wb") as out:
        command = ["-m", "service"] if app is None else [
            "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=full_env,
                                stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=server.url, timeout=5) as c:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{server.logs()}")
                try:
                    r = c.get("/health/ready" if wait_ready else "/health/live")
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready in time:\n{server.logs()}")
                time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def peak_rss(server: Server) -> int:
    """The worker's peak resident memory (VmHWM), in bytes."""
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server: Server, loop_thread_only: bool = False) -> float:
    """CPU time (user + system) the worker has used: all its threads, or only the main
    thread's, which runs the event loop."""
    pid = server.proc.pid
    stat = Path(f"/proc/{pid}/task/{pid}/stat" if loop_thread_only else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command's name
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime


# what refusing may cost at most; serving the smallest over-budget request costs far more
REFUSAL_CPU_S = 0.05


def refused_quickly(server: Server, send: Callable[[], tuple[int | str, str]],
                    status: int | str, needle: str) -> None:
    before, cpu_before = peak_rss(server), cpu_seconds(server)
    got, message = send()
    spent = cpu_seconds(server) - cpu_before
    assert (got, needle in message) == (status, True), message
    assert spent < REFUSAL_CPU_S, f"refusing cost {spent:.2f} CPU seconds"
    assert peak_rss(server) - before < 100 * MIB


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def fixture_images(kind: str) -> list[tuple[int, bytes]]:
    """(label, PNG bytes) of the real test-set images shipped in tests/fixtures."""
    out = []
    for path in sorted((FIXTURES / kind).glob("*.png")):
        out.append((int(path.name.split("_")[0]), path.read_bytes()))
    return out


def progressive_jpeg(img: np.ndarray, scans: int) -> bytes:
    """``img`` as a progressive JPEG of ``scans`` scans: the encoder's own, then its last
    scan repeated (each copy refines every pixel again, as a hostile file's would)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    jpeg = buf.tobytes()
    have = jpeg.count(b"\xff\xda")
    assert scans >= have, f"the encoder already writes {have} scans"
    last, end = jpeg.rfind(b"\xff\xda"), jpeg.rfind(b"\xff\xd9")
    return jpeg[:end] + jpeg[last:end] * (scans - have) + jpeg[end:]


SHAPES = ("circle", "square", "triangle")


def shape_picture(kind: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A filled shape of ``kind`` in a random bright colour, near the middle at a random
    size, on a random dark background, BGR ``[size, size, 3]``."""
    img = np.full((size, size, 3), rng.integers(0, 60, 3), np.uint8)
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    r = int(rng.integers(size // 4, size // 3))
    cx, cy = (int(v) for v in size // 2 + rng.integers(-size // 8, size // 8 + 1, 2))
    if kind == "circle":
        cv2.circle(img, (cx, cy), r, colour, -1)
    elif kind == "square":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    else:
        points = np.array([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], np.int32)
        cv2.fillPoly(img, [points], colour)
    return img


def shapes_folder(root: Path, per_class: int, seed: int = 0, size: int = 64) -> Path:
    """A folder dataset of coloured shapes: one sub-folder per kind, PNGs and JPEGs."""
    rng = np.random.default_rng(seed)
    for kind in SHAPES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ext = ".png" if i % 2 else ".jpg"
            cv2.imwrite(str(root / kind / f"{i}{ext}"), shape_picture(kind, rng, size))
    return root
