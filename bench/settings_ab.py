"""Server settings compared side by side, in alternating rounds. Not a test: prints figures.

  python bench/settings_ab.py NAME:KEY=VALUE[,KEY=VALUE...] [NAME:...] [--rounds 3]

e.g. ``python bench/settings_ab.py one:WORKERS=1 two:WORKERS=2``.
Each configuration (keys are settings without the ``CNNLAB_`` prefix; ``NAME:`` alone =
the defaults) gets a fresh server per round, measured like bench/serving.py's own service:
single-image uploads at c=1 (p50) and c=64 (img/s), and 64-image requests at c=8 (img/s),
each after 2 s of uncounted warm-up. A shared machine's speed drifts within minutes, so rounds
alternate the configurations; compare them round by round.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import first_digit, free_port, server, service_env, wrk
from bench.serving import multipart


def parse(spec: str) -> tuple[str, dict[str, str]]:
    name, _, pairs = spec.partition(":")
    env = {}
    for pair in filter(None, pairs.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"{spec!r}: expected KEY=VALUE, got {pair!r}")
        env[f"CNNLAB_{key.upper()}"] = value
    return name, env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+", type=parse)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--model", default="mnist")
    args = ap.parse_args()
    digit = first_digit()
    multi, multi_type = multipart([digit] * 64)
    s = args.seconds
    for round_ in range(1, args.rounds + 1):
        for name, extra in args.configs:
            port = free_port()
            env = service_env(port, **extra)
            with server([sys.executable, "-m", "service"], port, "/health/ready",
                        env=env) as (url, _):
                target = f"{url}/api/models/{args.model}/predict"
                c1 = wrk(target, digit, "image/png", 1, s, threads=1)
                c64 = wrk(target, digit, "image/png", 64, s, threads=2)
                batched = wrk(target, multi, multi_type, 8, s, threads=2)
            errors = c1.errors + c64.errors + batched.errors
            print(f"round {round_} {name:<14} c=1 p50 {c1.p50_ms:5.2f} ms   c=64 "
                  f"{c64.requests_per_s:5.0f} img/s   64 images/request c=8 "
                  f"{64 * batched.requests_per_s:5.0f} img/s   errors {errors}", flush=True)


if __name__ == "__main__":
    main()
