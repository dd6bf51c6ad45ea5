"""``python -m service migrate`` brings the capture store to the newest schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_migrate_creates_and_then_keeps_the_store(tmp_path: Path) -> None:
    env = {**os.environ, "CNNLAB_CAPTURE_DIR": str(tmp_path / "captures")}
    for _ in range(2):  # a new store, then one already at the newest revision
        done = subprocess.run([sys.executable, "-m", "service", "migrate"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "capture store at revision 0002"
    assert (tmp_path / "captures" / "captures.db").is_file()
