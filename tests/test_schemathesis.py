"""Schemathesis against the OpenAPI document of each of the four services of a throwaway
whole system (issue 13 "Schemathesis in CI"): every operation is called with generated
valid and invalid input, with a token of every role and with none, and every answer must
be no server error (5xx) and conform to what the document says (status code, content
type, headers, body schema).

Bounded to a few minutes on 2 CPUs: a few examples per operation and generation mode,
no shrinking, derandomized (the same requests on every run, so a failure reproduces).
The counts are printed (run with ``-s``) and recorded in docs/security.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from artstore.admin.roles import ROLES
from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.system import System

EXAMPLES = 5  # per operation and generation mode
# These call the URL the client gives them: when nothing (or no SE) answers there, 502
# UPSTREAM_UNAVAILABLE is the documented answer (docs/admin.md), not a server fault.
CALLS_A_GIVEN_URL = {
    "POST /api/v1/storage-elements/discover",
    "POST /api/v1/storage-elements",
    "PATCH /api/v1/storage-elements/{storage_id}",
}


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    given_url_unreachable = (
        response.status_code == 502
        and case.operation.label in CALLS_A_GIVEN_URL
        and response.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    )
    return None if given_url_unreachable else not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# tus PATCH bodies are raw bytes like any upload.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@dataclass
class Tally:
    operations: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fuzz_db(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_fuzz")
    yield db
    db.drop()


@pytest.fixture(scope="module")
def system(fuzz_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = System(tmp_path_factory.mktemp("schemathesis"), fuzz_db)
    try:
        sys_.add_se("edit")
        sys_.add_se("rw")
        sys_.start_ingester()
        query = sys_.start_query()
        query.wait_ready()
        yield sys_
    finally:
        sys_.stop()


@pytest.fixture(scope="module")
def tokens(system: System) -> list[str | None]:
    """A token of every role, and none (anonymous)."""
    return [system.user_token([role]) for role in ROLES] + [None]


def _base_urls(system: System) -> dict[str, str]:
    procs: dict[str, ServiceProcess] = {p.service: p for p in system.processes}
    return {
        "admin": system.admin.url,
        "storage-element": system.ses[1].url,
        "ingester": procs["ingester"].url,
        "query": procs["query"].url,
    }


def _fuzz(base_url: str, tokens: list[str | None]) -> Tally:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        tally.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, base_url, tokens, tally)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to make invalid
    return tally


def _run(
    operation: Any, mode: GenerationMode, base_url: str, tokens: list[str | None], tally: Tally
) -> None:
    seen: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(case=operation.as_strategy(generation_mode=mode), token=st.sampled_from(tokens))
    def call(case: Any, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        tally.requests += 1
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=60)
        except (Exception, FailureGroup) as exc:  # collected: all operations run, then reported
            if len(seen) < 2:
                seen.append(f"{operation.label} [{mode.value}]: {exc}"[:3000])

    try:
        call()
    finally:
        tally.failures += seen


@pytest.mark.parametrize("service", ["admin", "storage-element", "ingester", "query"])
def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    system: System, tokens: list[str | None], service: str
) -> None:
    tally = _fuzz(_base_urls(system)[service], tokens)
    print(  # the counts docs/security.md quotes
        f"\nschemathesis {service}: {tally.operations} operations, {tally.requests} requests, "
        f"{len(tally.failures)} failures"
    )
    assert tally.operations > 0 and tally.requests >= tally.operations
    assert not tally.failures, "\n\n".join(tally.failures)
    # The system still serves after the fuzzing (nothing it sent broke a service).
    assert httpx.get(f"{_base_urls(system)[service]}/health/live", timeout=10).status_code == 200
