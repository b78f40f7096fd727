"""The per-request pieces made cheaper in issue 19 keep their contract: request ids,
HTTP metrics, and the documented security schemes of authenticated routes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials

from artstore.common import auth
from artstore.common.auth import CurrentPrincipal, Principal, document_security
from artstore.common.observability import Metrics, new_request_id


def test_request_ids_are_32_hex_and_distinct() -> None:
    ids = [new_request_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_metrics_count_each_label_set_apart() -> None:
    metrics = Metrics("storage_element")
    for _ in range(3):
        metrics.observe("GET", "/api/v1/files/{file_id}", 200, 0.002)
    metrics.observe("GET", "/api/v1/files/{file_id}", 404, 0.5)

    def value(name: str, status: str) -> float | None:
        return metrics.registry.get_sample_value(
            name,
            {
                "service": "storage_element",
                "method": "GET",
                "route": "/api/v1/files/{file_id}",
                "status": status,
            },
        )

    assert value("artstore_http_requests_total", "200") == 3
    assert value("artstore_http_requests_total", "404") == 1
    assert value("artstore_http_request_duration_seconds_count", "200") == 3
    assert value("artstore_http_request_duration_seconds_sum", "404") == 0.5


class _Scoped:
    """A class dependency on the principal, like RequireScope."""

    async def __call__(self, who: CurrentPrincipal) -> Principal:
        return who


Scoped = Annotated[Principal, Depends(_Scoped())]


async def _old_principal(
    authorization: Annotated[str | None, Depends(auth._oauth2)],
    _pasted: Annotated[HTTPAuthorizationCredentials | None, Depends(auth._pasted)],
) -> None:
    """What current_principal depended on before issue 19: FastAPI documents these."""


OldPrincipal = Annotated[None, Depends(_old_principal)]


def _app(with_scheme_dependencies: bool) -> FastAPI:
    app = FastAPI()
    if with_scheme_dependencies:

        @app.get("/private/{x}")
        async def private(x: int, _: OldPrincipal) -> dict[str, int]:
            return {"x": x}

    else:

        @app.get("/private/{x}")
        async def private(x: int, _: CurrentPrincipal) -> dict[str, int]:
            return {"x": x}

    @app.delete("/nested", status_code=204)
    async def nested(_: Scoped) -> None:
        return None

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_authenticated_routes_document_both_schemes_as_a_dependency_would() -> None:
    ours = _app(with_scheme_dependencies=False)
    schema: dict[str, Any] = ours.openapi()
    document_security(ours.routes, schema)
    fastapi_own = _app(with_scheme_dependencies=True).openapi()

    either = [{"OAuth2": []}, {"BearerToken": []}]
    assert schema["paths"]["/private/{x}"]["get"]["security"] == either
    assert schema["paths"]["/nested"]["delete"]["security"] == either  # through a class
    assert "security" not in schema["paths"]["/public"]["get"]
    assert fastapi_own["paths"]["/private/{x}"]["get"]["security"] == either
    assert schema["components"]["securitySchemes"] == fastapi_own["components"]["securitySchemes"]


def test_no_security_schemes_without_an_authenticated_route() -> None:
    app = FastAPI()

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"ok": "yes"}

    schema: dict[str, Any] = app.openapi()
    document_security(app.routes, schema)
    assert "securitySchemes" not in schema.get("components", {})
