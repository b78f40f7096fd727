"""Roles grant scopes (architecture §4); unknown roles grant nothing."""

from __future__ import annotations

from collections.abc import Iterable

from artstore.common.auth import ALL_SCOPES

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(ALL_SCOPES),
    "operator": frozenset(
        {
            "files:read",
            "files:write",
            "files:delete",
            "storage:read",
            "storage:write",
            "admin:read",
        }
    ),
    "user": frozenset({"files:read", "files:write"}),
    "auditor": frozenset({"files:read", "storage:read", "admin:read", "audit:read"}),
}
ROLES = tuple(ROLE_SCOPES)


def scopes_for(roles: Iterable[str]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= ROLE_SCOPES.get(role, frozenset())
    return out


def ordered(scopes: Iterable[str]) -> list[str]:
    """Scopes in the canonical order of architecture §4."""
    wanted = set(scopes)
    return [s for s in ALL_SCOPES if s in wanted]
