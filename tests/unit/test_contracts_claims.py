"""Token claims written once (issue 14): what the admin signs reads back the same."""

from __future__ import annotations

import pytest

from artstore.contracts.claims import CLAIM_NAMES, ClaimsError, TokenClaims


def test_a_signed_payload_reads_back_as_signed() -> None:
    signed = TokenClaims(
        sub="alice",
        kind="user",
        name="Alice",
        scope="files:read files:write",
        roles=("user",),
        act="ingester",
        iss="artstore",
        aud="se-1",
        iat=1700000000.123,
        nbf=1700000000,
        exp=1700000900,
        jti="j1",
    )
    payload = signed.to_claims()
    assert set(payload) == set(CLAIM_NAMES)
    assert payload["act"] == {"sub": "ingester"} and payload["roles"] == ["user"]
    assert TokenClaims.from_claims(payload) == signed
    assert signed.scopes == {"files:read", "files:write"}


def test_a_service_account_has_no_roles_claim() -> None:
    payload = TokenClaims(sub="sa-1", kind="service_account", name="sa", scope="").to_claims()
    assert "roles" not in payload and "act" not in payload
    assert TokenClaims.from_claims(payload).roles is None


@pytest.mark.parametrize("sub", [None, "", 7])
def test_no_subject_is_refused(sub: object) -> None:
    with pytest.raises(ClaimsError, match="no subject"):
        TokenClaims.from_claims({"sub": sub})


@pytest.mark.parametrize("act", ["svc", {"sub": ""}, {"sub": 3}, {}])
def test_a_malformed_actor_is_refused(act: object) -> None:
    with pytest.raises(ClaimsError, match="malformed act"):
        TokenClaims.from_claims({"sub": "a", "act": act})


def test_claims_of_the_wrong_type_read_as_absent() -> None:
    got = TokenClaims.from_claims(
        {"sub": "a", "scope": ["files:read"], "roles": "admin", "exp": "9", "iat": True}
    )
    assert (got.scope, got.roles, got.exp, got.iat) == ("", None, None, None)
    assert (got.kind, got.name) == ("user", "a")
