"""Soak: live traffic while a model version is published and deleted again and again.

    python bench/soak.py --minutes 20            # a version published and deleted each minute
    python bench/soak.py --cycles 20 --no-load   # back-to-back cycles, memory only

``python -m service`` (two workers unless ``--workers``) serves a copy of the bundled
models. Each cycle publishes a copy of mnist's newest version as the next version the way
the trainer does (staged under a dot-name, then renamed), waits until every worker serves
it, then deletes it and waits until it is gone; under the default ``latest`` policy that is
two loads and two unloads per cycle. Client threads send a mix of requests meanwhile
(predict on both models, activations). Printed: the resident memory (RSS) of every service
process every 30 s and after each cycle, requests served, failures, p50/p99 latency, and
the p99 of requests that overlapped a publish against the steady p99.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, first_digit, free_port, group_processes, server, service_env

MODEL = "mnist"


def rss_mib(pgid: int) -> dict[int, float]:
    """Resident memory in MiB of every live process of the server's group, by pid."""
    out = {}
    for proc in group_processes(pgid):
        try:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[int(proc.name)] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return out


@dataclass
class Traffic:
    """Client threads' results: (start time, latency s) of each success, and failures."""

    done: list[tuple[float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self, url: str, index: int) -> None:
        digit = first_digit()
        fashion = sorted((ROOT / "tests" / "fixtures" / "fashion").glob("*.png"))[0].read_bytes()
        calls = [(f"/api/models/{MODEL}/predict", digit),
                 ("/api/models/fashion_mnist/predict", fashion),
                 (f"/api/models/{MODEL}/activations?layers=0&format=npy", digit)]
        with httpx.Client(base_url=url, timeout=30) as http:
            n = index
            while not self.stop.is_set():
                path, body = calls[n % len(calls)]
                n += 1
                started = time.monotonic()
                try:
                    r = http.post(path, content=body, headers={"Content-Type": "image/png"})
                    if r.status_code == 200:
                        self.done.append((started, time.monotonic() - started))
                    else:
                        self.failures.append(f"{path}: {r.status_code} {r.text[:120]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{path}: {type(exc).__name__} {exc}")


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1..99) of ``values``; NaN when there are none."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def wait_for(http: httpx.Client, version: int, present: bool, timeout_s: float = 120) -> None:
    """Until ``version`` is ready (``present``) or unknown to the service."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = http.get(f"/v2/models/{MODEL}/versions/{version}/ready")
        if (r.status_code == 200) == present:
            return
        time.sleep(0.2)
    raise RuntimeError(f"version {version} still {'absent' if present else 'served'}")


def publish(model_dir: Path, source: Path, version: int) -> None:
    staged = model_dir / f".staging-{version}"
    shutil.copytree(source, staged)
    staged.rename(model_dir / str(version))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10,
                    help="run this long, one publish/delete cycle per --cycle-seconds")
    ap.add_argument("--cycles", type=int, help="run this many cycles back to back instead")
    ap.add_argument("--cycle-seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=2, help="client threads (0: no traffic)")
    ap.add_argument("--no-load", dest="clients", action="store_const", const=0)
    ap.add_argument("--env", action="append", default=[], metavar="CNNLAB_X=VALUE",
                    help="more service settings")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="soak-models-") as tmp:
        models = Path(tmp)
        for name in ("mnist", "fashion_mnist"):
            shutil.copytree(ROOT / "models" / name, models / name)
        model_dir = models / MODEL
        newest = max(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())
        extra = dict(e.split("=", 1) for e in args.env)
        port = free_port()
        env = {**service_env(port, CNNLAB_WORKERS=str(args.workers),
                             CNNLAB_POLL_INTERVAL_S="0.5", **extra),
               "CNNLAB_MODELS_DIR": str(models)}
        with server([sys.executable, "-m", "service"], port, "/health/ready", env) as (url, pid):
            return soak(args, url, pid, model_dir, newest)


def soak(args: argparse.Namespace, url: str, pid: int, model_dir: Path, newest: int) -> int:
    traffic = Traffic()
    threads = [threading.Thread(target=traffic.client, args=(url, i), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(5)  # every worker has answered a few requests of each kind
    started = time.monotonic()
    start_rss = rss_mib(pid)
    print(f"start: {len(start_rss)} processes, RSS {sum(start_rss.values()):,.0f} MiB "
          f"({', '.join(f'{v:,.0f}' for v in start_rss.values())})", flush=True)
    after_cycle: list[float] = []
    publishing: list[tuple[float, float]] = []  # (from, to) while a version came or went
    next_report = started + 30
    end = started + args.minutes * 60
    cycle = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        while (cycle < args.cycles) if args.cycles else (time.monotonic() < end):
            # a window lasts from the change until 5 s after the service reports it done
            # (the other worker polls the same folder and follows within a second or so)
            cycle_start = time.monotonic()
            publish(model_dir, model_dir / str(newest), newest + 1)
            wait_for(http, newest + 1, present=True)
            publishing.append((cycle_start, time.monotonic() + 5))
            time.sleep(0 if args.cycles else max(0.0, args.cycle_seconds / 2 - 5))
            drop_at = time.monotonic()
            shutil.rmtree(model_dir / str(newest + 1))
            wait_for(http, newest + 1, present=False)
            wait_for(http, newest, present=True)
            publishing.append((drop_at, time.monotonic() + 5))
            cycle += 1
            while time.monotonic() < min(cycle_start + args.cycle_seconds, end) \
                    and not args.cycles:
                if time.monotonic() >= next_report:
                    report(pid, started, traffic)
                    next_report += 30
                time.sleep(0.5)
            # at the end of the cycle's minute (--cycles: as soon as the old version is back)
            total = sum(rss_mib(pid).values())
            after_cycle.append(total)
            print(f"cycle {cycle}: RSS {total:,.0f} MiB", flush=True)
            if time.monotonic() >= next_report:
                report(pid, started, traffic)
                next_report += 30
    traffic.stop.set()
    for t in threads:
        t.join()
    return summary(start_rss, after_cycle, publishing, traffic)


def report(pid: int, started: float, traffic: Traffic) -> None:
    rss = rss_mib(pid)
    recent = [s for t, s in traffic.done if t > time.monotonic() - 30]
    print(f"{time.monotonic() - started:6.0f} s  RSS {sum(rss.values()):,.0f} MiB "
          f"({', '.join(f'{v:,.0f}' for v in rss.values())})  served {len(traffic.done):,}  "
          f"failed {len(traffic.failures)}  last 30 s p50 {1000 * percentile(recent, 50):.1f} "
          f"ms p99 {1000 * percentile(recent, 99):.1f} ms", flush=True)


def summary(start_rss: dict[int, float], after_cycle: list[float],
            publishing: list[tuple[float, float]], traffic: Traffic) -> int:
    start = sum(start_rss.values())
    print(f"\n{len(after_cycle)} cycles; RSS after each (MiB): "
          + ", ".join(f"{v:,.0f}" for v in after_cycle))
    if after_cycle:
        last = after_cycle[-10:]
        slope = statistics.linear_regression(range(len(last)), last).slope \
            if len(last) > 1 else 0.0
        print(f"start {start:,.0f} MiB, end {after_cycle[-1]:,.0f} MiB "
              f"({100 * (after_cycle[-1] / start - 1):+.1f} %; goal within +5 %), "
              f"max {max(after_cycle):,.0f}; trend over the last {len(last)} cycles "
              f"{slope:+.1f} MiB per cycle")
    if traffic.done:
        during = [s for t, s in traffic.done if any(a <= t <= b for a, b in publishing)]
        steady = [s for t, s in traffic.done if not any(a <= t <= b for a, b in publishing)]
        all_s = [s for _, s in traffic.done]
        print(f"requests {len(all_s):,} served, {len(traffic.failures)} failed; "
              f"p50 {1000 * percentile(all_s, 50):.1f} ms, p99 {1000 * percentile(all_s, 99):.1f}"
              f" ms; p99 steady {1000 * percentile(steady, 99):.1f} ms, during a publish or "
              f"delete {1000 * percentile(during, 99):.1f} ms "
              f"({percentile(during, 99) / percentile(steady, 99):.2f}x; goal <= 2x)")
    for failure in traffic.failures[:10]:
        print("  failure:", failure)
    return 1 if traffic.failures else 0


if __name__ == "__main__":
    sys.exit(main())
