"""Reliability under load (issue 5). Not a test: prints figures. Loopback only, bounded.

  python bench/load.py [--seconds 60] [--concurrency 64] [--workers 1] [--rss-every 10]

Runs the real service on a copy of the bundled models and drives it with a mix of
predict (upload), activations and Sobel-filter requests. A third of the way in, a new
version of mnist is published (staged in a hidden directory, then renamed, exactly as the
trainer publishes); two thirds in, it is deleted. Prints requests served, failures
(anything but 2xx and deliberate 503 load shedding), p50/p99, resident memory at start
and end (of all the server's processes), and which mnist versions answered in each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import ROOT, free_port, group_processes, server
from cnnlab.layout import list_versions

DIGIT = (ROOT / "tests" / "fixtures" / "digits" / "7_test0.png").read_bytes()
REQUESTS = [
    ("predict", "/api/models/mnist/predict"),
    ("predict-fashion", "/api/models/fashion_mnist/predict"),
    ("activations", "/api/models/mnist/activations?layers=conv1&format=npy"),
    ("filter", "/api/filter?kernel=sobel_right"),
]


def rss_mib(pgid: int) -> float:
    """Resident memory of every process in group ``pgid`` (the server and its workers)."""
    total = 0
    for proc in group_processes(pgid):
        with contextlib.suppress(OSError):
            total += sum(int(line.split()[1]) for line in (proc / "status").read_text()
                         .splitlines() if line.startswith("VmRSS:"))
    return total / 1024


async def run(url: str, seconds: float, concurrency: int, models: Path, pid: int,
              rss_every: float) -> dict[str, object]:
    statuses: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    latencies: list[float] = []
    versions: dict[str, Counter[int]] = {"before": Counter(), "new version": Counter(),
                                         "after removal": Counter()}
    phase = "before"
    start = time.monotonic()
    stop_at = start + seconds

    async def worker(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            n = i
            while time.monotonic() < stop_at:
                kind, path = REQUESTS[n % len(REQUESTS)]
                n += 1
                t = time.perf_counter()
                try:
                    r = await c.post(path, content=DIGIT, headers={"content-type": "image/png"})
                except httpx.TransportError as exc:
                    failures[f"{kind}: {type(exc).__name__}"] += 1
                    continue
                latencies.append(time.perf_counter() - t)
                statuses[str(r.status_code)] += 1
                if r.status_code == 503:
                    continue  # deliberate shedding, not a failure
                if r.status_code != 200:
                    failures[f"{kind}: {r.status_code} {r.text[:120]}"] += 1
                elif kind == "predict":
                    versions[phase][r.json()["version"]] += 1

    async def reload_script() -> None:
        nonlocal phase
        model_dir = models / "mnist"
        current = list_versions(model_dir)[-1]
        await asyncio.sleep(seconds / 3)
        staged = model_dir / ".tmp-bench"
        await asyncio.to_thread(shutil.copytree, model_dir / str(current), staged)
        staged.rename(model_dir / str(current + 1))
        phase = "new version"
        print(f"  t={time.monotonic() - start:.0f}s published mnist version {current + 1}",
              flush=True)
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(shutil.rmtree, model_dir / str(current + 1))
        phase = "after removal"
        print(f"  t={time.monotonic() - start:.0f}s deleted mnist version {current + 1}",
              flush=True)

    async def rss_samples() -> None:  # does memory settle, or keep growing?
        while (left := stop_at - time.monotonic()) > rss_every / 2:
            await asyncio.sleep(min(rss_every, left))
            print(f"  t={time.monotonic() - start:.0f}s RSS {rss_mib(pid):.0f} MiB", flush=True)

    await asyncio.gather(reload_script(), rss_samples(),
                         *(worker(i) for i in range(concurrency)))
    lat = sorted(latencies)
    return {"statuses": dict(statuses), "failures": dict(failures),
            "served": sum(statuses.values()),
            "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
            "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))] if lat else float("nan"),
            "versions": {k: dict(v) for k, v in versions.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1, help="CNNLAB_WORKERS of the server")
    ap.add_argument("--rss-every", type=float, default=10, help="print RSS every N seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        shutil.copytree(ROOT / "models", models)
        port = free_port()
        env = {"CNNLAB_MODELS_DIR": str(models), "CNNLAB_PORT": str(port),
               "CNNLAB_POLL_INTERVAL_S": "1", "CNNLAB_LOG_LEVEL": "warning",
               "CNNLAB_WORKERS": str(args.workers)}
        with server([sys.executable, "-m", "service"], port, "/health/ready",
                    env=env) as (url, pid):
            for _ in range(50):  # warm every route once
                for _, path in REQUESTS:
                    httpx.post(url + path, content=DIGIT, headers={"content-type": "image/png"})
            rss_start = rss_mib(pid)
            print(f"{args.seconds:.0f} s at concurrency {args.concurrency}, mixed requests; "
                  f"server pid {pid} ({args.workers} worker(s)), RSS {rss_start:.0f} MiB",
                  flush=True)
            out = asyncio.run(run(url, args.seconds, args.concurrency, models, pid,
                                  args.rss_every))
            rss_end = rss_mib(pid)
    growth = 100 * (rss_end - rss_start) / rss_start
    fails = sum(out["failures"].values())  # type: ignore[attr-defined]
    print(f"requests served {out['served']}  failures {fails}  statuses {out['statuses']}")
    if fails:
        print(f"  failures: {out['failures']}")
    print(f"p50 {out['p50_ms']:.1f} ms  p99 {out['p99_ms']:.1f} ms")
    print(f"RSS start {rss_start:.0f} MiB  end {rss_end:.0f} MiB  growth {growth:+.1f} % "
          "(goal < 10 %)")
    print(f"mnist versions answering, by phase: {out['versions']}")


if __name__ == "__main__":
    main()
