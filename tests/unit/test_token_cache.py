"""TokenVerifier remembers checked tokens, but never past their window or their key."""

from __future__ import annotations

import time
from typing import Any

import pytest

from artstore.common import auth
from artstore.common.auth import TokenVerifier
from artstore.common.errors import Unauthorized
from tests.support.issuer import AUDIENCE, ISSUER, KeyPair, TestIssuer


class Keys:
    """A key source that counts lookups and can be switched off (JWKS unreachable)."""

    def __init__(self, pair: KeyPair) -> None:
        self.pair = pair
        self.available = True
        self.lookups = 0

    async def get(self, kid: str) -> dict[str, Any]:
        self.lookups += 1
        if not self.available or kid != self.pair.kid:
            raise Unauthorized("token signed by an unknown key")
        return self.pair.jwk()


@pytest.fixture(scope="module")
def issuer() -> Any:
    it = TestIssuer()
    yield it
    it.close()


def _verifier(issuer: TestIssuer, **kw: Any) -> tuple[TokenVerifier, Keys]:
    keys = Keys(issuer.key)
    return TokenVerifier(keys, ISSUER, AUDIENCE, **kw), keys


async def test_a_checked_token_is_remembered_and_gives_the_same_principal(
    issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier, _ = _verifier(issuer)
    token = issuer.token("files:read", "bob")
    first = await verifier.verify(token)
    checked: list[str] = []
    real = verifier._verify_signed

    async def spy(t: str) -> Any:
        checked.append(t)
        return await real(t)

    monkeypatch.setattr(verifier, "_verify_signed", spy)
    second = await verifier.verify(token)
    assert second == first and second.sub == "bob" and second.scopes == {"files:read"}
    assert checked == []  # the signature was not checked again
    other = issuer.token("files:write", "carol")
    assert (await verifier.verify(other)).sub == "carol"
    assert checked == [other]


async def test_a_remembered_token_is_not_trusted_past_its_expiry(
    issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier, _ = _verifier(issuer)
    token = issuer.token(ttl=60)
    await verifier.verify(token)
    checked: list[str] = []

    async def expired(t: str) -> Any:
        checked.append(t)
        raise Unauthorized("invalid token: Signature has expired.")

    monkeypatch.setattr(verifier, "_verify_signed", expired)
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthorized):
        await verifier.verify(token)
    assert checked == [token]  # past exp the full check runs again (and jose refuses it)
    assert token not in verifier._verified


async def test_a_remembered_token_is_refused_when_its_key_is_no_longer_served(
    issuer: TestIssuer,
) -> None:
    verifier, keys = _verifier(issuer)
    token = issuer.token()
    await verifier.verify(token)
    keys.available = False  # JWKS refetch failed: fail closed, remembered or not
    with pytest.raises(Unauthorized):
        await verifier.verify(token)
    keys.available = True
    assert (await verifier.verify(token)).sub == "alice"


async def test_the_cache_is_bounded(issuer: TestIssuer) -> None:
    verifier, _ = _verifier(issuer, cache_size=3)
    tokens = [issuer.token(sub=f"u{i}") for i in range(5)]
    for t in tokens:
        await verifier.verify(t)
    assert list(verifier._verified) == tokens[2:]
    assert (await verifier.verify(tokens[0])).sub == "u0"  # forgotten, checked again


async def test_a_bad_token_is_never_remembered(issuer: TestIssuer) -> None:
    verifier, _ = _verifier(issuer)
    forged = issuer.token(key=KeyPair(kid=issuer.key.kid))  # right kid, wrong key
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(forged)
    assert verifier._verified == {}
