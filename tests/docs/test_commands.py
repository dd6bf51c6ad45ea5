"""Every command block of the documentation (README, CONTRIBUTING, docs/) runs as written,
or says why it is not run here.

A ``bash`` block runs in bash (``set -euo pipefail``; every curl fails on an HTTP error)
and a ``python`` block in the project's Python, from a folder where the tests' fixtures
are where the repository's root has them, against the bundled models served as
``make run`` serves them — or with the settings its first line names
(``# with: CNNLAB_X=1 make run``). A ``print(...)  # -> text`` line promises that line of
output. A block preceded by ``<!-- not run: why -->`` is skipped (the reason is
required), one preceded by ``<!-- run by tests/...py ... -->`` is run by that test."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import BUNDLED_MODELS, ROOT, Server, free_port, run_server

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?P<marker><!--[^\n]*-->\n)?```(?P<lang>bash|sh|shell|console|python)\n"
                   r"(?P<code>.*?)```", re.S)
WITH = re.compile(r"^# with: (?P<settings>.*)make run\s*$")
PROMISE = re.compile(r"print\(.*\)\s*# -> (?P<out>.+)$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    marker: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def settings(self) -> tuple[tuple[str, str], ...]:
        """The settings of the service this block expects (none: the defaults)."""
        match = WITH.match(self.code.splitlines()[0])
        if match is None:
            return ()
        pairs = (w.split("=", 1) for w in shlex.split(match["settings"]))
        return tuple(sorted((k.removeprefix("CNNLAB_").lower(), v) for k, v in pairs))


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            found.append(Block(page, text.count("\n", 0, m.start("code")) + 1, m["lang"],
                               m["code"], (m["marker"] or "").strip()))
    return found


BLOCKS = blocks()
RUN = [b for b in BLOCKS if not b.marker]
MARKED = [b for b in BLOCKS if b.marker]


def test_the_pages_have_command_blocks() -> None:
    """(So an unmatched fence pattern cannot pass everything by finding nothing.)"""
    assert len(RUN) >= 10 and len(MARKED) >= 5, (len(RUN), len(MARKED))
    assert {b.page.name for b in RUN} >= {"README.md", "uploads.md", "tfserving.md", "v2.md",
                                          "inspection.md", "kernels.md", "operations.md"}


@pytest.mark.parametrize("block", MARKED, ids=[b.name for b in MARKED])
def test_a_block_not_run_here_says_why(block: Block) -> None:
    not_run = re.fullmatch(r"<!-- not run: (?P<why>.{15,}) -->", block.marker)
    run_by = re.fullmatch(r"<!-- run by (?P<test>tests/\S+\.py)\b.* -->", block.marker)
    assert not_run or (run_by and (ROOT / run_by["test"]).is_file()), block.marker


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        dict[tuple[tuple[str, str], ...], tuple[Server, int]]]:
    """The bundled models served as each block asks, started on first use."""
    started: dict[tuple[tuple[str, str], ...], tuple[Server, int]] = {}
    with contextlib.ExitStack() as stack:
        class Lazy(dict):  # type: ignore[type-arg]
            def __missing__(self, settings: tuple[tuple[str, str], ...]) -> tuple[Server, int]:
                grpc_port = free_port()
                server = stack.enter_context(run_server(
                    BUNDLED_MODELS, tmp_path_factory.mktemp("docs"), workers="auto",
                    grpc_port=str(grpc_port), capture_dir=str(tmp_path_factory.mktemp("c")),
                    **dict(settings)))
                self[settings] = (server, grpc_port)
                return self[settings]

        yield Lazy(started)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder to run blocks in: the fixtures as at the root; what blocks write stays."""
    folder = tmp_path_factory.mktemp("docs-work")
    (folder / "tests").symlink_to(ROOT / "tests")
    return folder


def on_ports(code: str, server: Server, grpc_port: int) -> str:
    port = server.url.rsplit(":", 1)[1]
    return code.replace("localhost:8000", f"127.0.0.1:{port}").replace(
        "localhost:8500", f"127.0.0.1:{grpc_port}")


@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_the_block_runs_as_written(block: Block, services: dict[
        tuple[tuple[str, str], ...], tuple[Server, int]], work: Path) -> None:
    server, grpc_port = services[block.settings()]
    code = on_ports(block.code, server, grpc_port)
    if block.lang == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-c", "set -euo pipefail\n"
                   'curl() { command curl -sS --fail-with-body "$@"; echo; }\n' + code]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    printed = done.stdout.splitlines()
    promised = [m["out"].strip() for line in block.code.splitlines()
                if (m := PROMISE.search(line))]
    assert [line for line in printed if line in promised] == promised, printed[-10:]
