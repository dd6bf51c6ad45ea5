"""The server's CPU time per image under load. Not a test: prints figures.

  python bench/cpu_cost.py [--workers 1] [--seconds 8]

Throughput on this shared VM moves by ±15 % from one run to the next; the CPU time the
server's processes spend per image moves less, so two versions of the code compare better
by it (run each checkout's copy of this script in turn, a few times). Single-image uploads
at c=64 and 64-image requests at c=8, wrk as in bench/serving.py, after 2 s of warm-up;
CPU = user + system time of every process of the server (``/proc/<pid>/stat``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import first_digit, free_port, group_processes, server, service_env, wrk
from bench.serving import multipart

_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes in group ``pgid``."""
    total = 0
    for proc in group_processes(pgid):
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / _TICK


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--model", default="mnist")
    args = ap.parse_args()
    digit = first_digit()
    multi, multi_type = multipart([digit] * 64)
    port = free_port()
    env = service_env(port, CNNLAB_WORKERS=str(args.workers))
    with server([sys.executable, "-m", "service"], port, "/health/ready", env=env) as (url,
                                                                                       pid):
        target = f"{url}/api/models/{args.model}/predict"
        plan = (("single-image uploads, c=64", digit, "image/png", 64, 1),
                ("64 images per request, c=8", multi, multi_type, 8, 64))
        for what, body, ctype, connections, per_request in plan:
            wrk(target, body, ctype, connections, 2, threads=2, warmup_s=0)
            before = group_cpu_s(pid)
            run = wrk(target, body, ctype, connections, args.seconds, threads=2, warmup_s=0)
            cpu_s = group_cpu_s(pid) - before
            images = per_request * run.requests
            print(f"{what}: {per_request * run.requests_per_s:.0f} img/s, "
                  f"{1e6 * cpu_s / images:.0f} µs of server CPU an image "
                  f"({args.workers} worker{'s' if args.workers > 1 else ''})", flush=True)


if __name__ == "__main__":
    main()
