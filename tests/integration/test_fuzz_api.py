"""Property-based fuzzing of every route from the service's own OpenAPI schema, against a
real uvicorn process (schemathesis's CLI): no 5xx, and every response's status code,
content type and body conform to the schema. Bounded: ~10 cases per operation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import run_server

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," \
         "response_schema_conformance"


def test_fuzz_every_route(tiny_repo: Path, tmp_path: Path) -> None:
    with run_server(tiny_repo, tmp_path, api_key="fuzz-key") as server:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run",
             f"{server.url}/openapi.json", "--checks", CHECKS, "-H", "X-API-Key: fuzz-key",
             "--phases", "examples,fuzzing", "--max-examples", "10", "--seed", "1",
             "--generation-deterministic", "--workers", "1", "--request-timeout", "30",
             # unload deliberately takes the model away (503 afterwards is correct);
             # tests/integration/test_repository_live.py covers it explicitly
             "--exclude-path", "/admin/models/{name}/unload",
             "--exclude-path", "/v2/repository/models/{name}/unload"],
            cwd=tmp_path,  # its cache (.schemathesis/) goes there, not into the work tree
            capture_output=True, text=True, timeout=420)
        healthy = server.client(headers={"X-API-Key": "fuzz-key"}).get("/health/ready")
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-6000:]
    operations = re.search(r"(\d+) (?:selected|total)", report)
    assert operations and int(operations.group(1)) >= 25, report[-3000:]
    assert healthy.status_code == 200
    assert "Traceback" not in server.logs()
