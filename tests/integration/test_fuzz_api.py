"""Property-based fuzzing of every route from the service's own OpenAPI schema, against a
real uvicorn process: no 5xx, and every response conforms to the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import Server, run_server


@pytest.fixture(scope="module")
def fuzz_server(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tiny_repo, tmp_path_factory.mktemp("fuzz"), api_key="fuzz-key") as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> schemathesis.schemas.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    return schema.configure(base_url=fuzz_server.url, headers={"X-API-Key": "fuzz-key"})


schema = schemathesis.pytest.from_fixture("api_schema")


def not_a_server_error(ctx: object, response: schemathesis.Response, case: object) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_route_errs_or_breaks_its_schema(case: schemathesis.Case) -> None:
    response = case.call(timeout=30)
    not_a_server_error(None, response, case)
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                             response_schema_conformance])
