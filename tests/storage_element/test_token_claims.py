"""What an SE accepts as a token (issue 13, architecture §10): ``aud`` the common audience or
this SE's own id, never another SE's; ``iss``, ``aud`` and ``exp`` required; times must
be numbers; ``act`` well-formed. Real SE processes trusting the test issuer."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from jose import jwt

from tests.conftest import SEFactory
from tests.support.issuer import TestIssuer
from tests.support.se import StorageElementUnderTest

pytestmark = pytest.mark.local_only


def _sign(issuer: TestIssuer, claims: dict[str, Any]) -> str:
    key = issuer.key
    return str(jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid}))


def _status(se: StorageElementUnderTest, token: str) -> int:
    r = httpx.get(
        f"{se.url}/api/v1/files/{uuid.uuid4()}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return r.status_code


def test_an_se_accepts_the_common_audience_and_its_own_id_only(
    se_factory: SEFactory, issuer: TestIssuer
) -> None:
    se, other = se_factory("edit"), se_factory("edit")
    assert _status(se, issuer.token()) == 404  # a good token: the file is unknown
    assert _status(se, issuer.token(aud=se.id, act={"sub": "ingester"})) == 404
    for aud in (other.id, "someone-else", [se.id], ["artstore", se.id], 42):
        assert _status(se, issuer.token(aud=aud)) == 401, aud
    assert _status(other, issuer.token(aud=se.id)) == 401


BAD_CLAIMS: list[dict[str, Any]] = [
    {"aud": None},
    {"iss": None},
    {"exp": None},
    {"iss": "someone-else"},
    {"exp": "TIME"},  # a string exp, however far in the future
    {"exp": True},
    {"nbf": "0"},
    {"iat": "0"},
    {"exp": "PAST"},
    {"act": "ingester"},
    {"act": {"who": "ingester"}},
]


def test_missing_or_malformed_claims_are_401(se_factory: SEFactory, issuer: TestIssuer) -> None:
    se = se_factory("edit")
    assert _status(se, _sign(issuer, issuer.claims())) == 404  # the control
    for change in BAD_CLAIMS:
        claims = issuer.claims()
        for name, value in change.items():
            if value is None:
                del claims[name]
            elif value == "TIME":
                claims[name] = str(int(time.time()) + 3600)
            elif value == "PAST":
                claims[name] = int(time.time()) - 5
            else:
                claims[name] = value
        r = httpx.get(
            f"{se.url}/api/v1/files/{uuid.uuid4()}",
            headers={"Authorization": f"Bearer {_sign(issuer, claims)}"},
            timeout=30,
        )
        assert r.status_code == 401, (change, r.text)
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
