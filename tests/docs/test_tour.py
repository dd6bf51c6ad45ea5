"""The documentation's tour (docs/getting-started.md), run as written in bash against the
service started as ``make run`` starts it (``python -m service``, workers ``auto``) with
the settings the tour names at its top. A line that stops working fails this test: every
curl fails on an HTTP error (``--fail-with-body``), the script stops at the first
failure, and the answers the tour promises are checked. (Every other command block of
the documentation runs in tests/docs/test_commands.py.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BUNDLED_MODELS, ROOT, Server, free_port, run_server

PAGE = (ROOT / "docs" / "getting-started.md").read_text()


def section(title: str) -> str:
    start = PAGE.index(f"## {title}\n")
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start:] if end < 0 else PAGE[start:end]


TOUR = re.search(r"```bash\n(.*?)```", section("A tour with curl"), re.S).group(1)  # type: ignore[union-attr]


def tour_settings() -> dict[str, str]:
    """The ``VAR=value ... make run`` line at the top of the tour, as settings."""
    line = next(x for x in TOUR.splitlines() if x.rstrip().endswith("make run"))
    words = shlex.split(line.lstrip("# "))
    assert words[-2:] == ["make", "run"]
    return dict(w.split("=", 1) for w in words[:-2])


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int, Path]]:
    """The service as the tour starts it; a directory to run the tour in (the tests'
    fixtures reachable as from the repository's root; files it writes stay there)."""
    tmp = tmp_path_factory.mktemp("tour")
    work = tmp / "work"
    work.mkdir()
    (work / "tests").symlink_to(ROOT / "tests")
    grpc_port = free_port()
    settings = {k.removeprefix("CNNLAB_").lower(): v for k, v in tour_settings().items()}
    with run_server(BUNDLED_MODELS, tmp, workers="auto", grpc_port=str(grpc_port),
                    **settings) as server:
        yield server, grpc_port, work


def on_port(text: str, server: Server, grpc_port: int) -> str:
    port = server.url.rsplit(":", 1)[1]
    return text.replace("localhost:8000", f"127.0.0.1:{port}").replace(
        "localhost:8500", f"127.0.0.1:{grpc_port}")


def test_the_curl_tour_runs_as_written(tour: tuple[Server, int, Path]) -> None:
    server, grpc_port, work = tour
    script = ("set -euo pipefail\n"
              # every curl of the tour, failing on an HTTP error; answers one per line
              "curl() { command curl -sS --fail-with-body \"$@\"; echo; }\n"
              + on_port(TOUR, server, grpc_port))
    done = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PATH": os.environ["PATH"]})
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{done.stdout[-3000:]}"
    answers = [json.loads(line) for line in done.stdout.splitlines()
               if line.startswith("{")]
    uploads = [a for a in answers if "predictions" in a and "version" in a]
    # the sandal sent to the digit model is not in distribution; every digit is
    boot = [a for a in uploads if a["predictions"][0]["filename"] == "5_test8.png"]
    assert [a["predictions"][0]["in_distribution"] for a in boot] == [False]
    predictions = [a for a in uploads if a not in boot]
    assert all(p["in_distribution"] for a in predictions for p in a["predictions"])
    # the digit is a 7 on every face and version; the second upload's second picture a 2
    tops = [[p["top_k"][0]["label"] for p in a["predictions"]] for a in predictions]
    assert tops[:3] == [["7"], ["7", "2"], ["7"]], tops
    assert all(t[0] == "7" for t in tops), tops
    assert [len(a["predictions"][0]["top_k"]) for a in predictions[:1]] == [3]
    tf_serving = next(a for a in answers if "predictions" in a and "version" not in a)
    assert max(range(10), key=tf_serving["predictions"][0].__getitem__) == 7
    v2 = next(a for a in answers if "model_name" in a and a.get("outputs"))
    probs = v2["outputs"][0]["data"]
    assert max(range(10), key=probs.__getitem__) == 7 and max(probs) > 0.9
    classified = next(a for a in answers if "result" in a)  # TF Serving's :classify
    assert classified["result"][0][0][0] == "7"
    best = next(a["outputs"][0] for a in answers
                if "model_name" in a and a["outputs"][0]["datatype"] == "BYTES")
    assert best["shape"] == [1, 3] and best["data"][0].split(":")[1:] == ["7", "7"]
    trust = next({o["name"]: o["data"] for o in a["outputs"]} for a in answers
                 if "model_name" in a and a["outputs"][0]["name"] == "ood_score")
    assert trust["in_distribution"] == [True] and isinstance(trust["ood_score"][0], float)
    labels = [a["labels"] for a in answers if "labels" in a and a.get("name") == "mnist"]
    assert {"stable": 9, "canary": 9} in labels and labels[-1] == {"stable": 9}
    explained = next(a for a in answers if "explanations" in a)
    assert explained["explanations"][0]["label"] == "7"
    for written in ("explain.png", "acts.npz", "filters.png", "learned.png", "gradcam.png",
                    "edges.png", "lap.png", "out.png"):
        assert (work / written).stat().st_size > 100, written
