"""Who may choose a file id, act for a service, or change another user's file.

architecture §10 ("File ids", "Ownership"), shared by the storage element (its routes) and the
ingester (finalize), so both apply the very same predicates.

- A file id may be chosen only through a token whose ``act`` names a service (an SE-bound
  token the ingester or worker obtained by token exchange) or that holds
  ``storage:write`` (operators, admins); anyone else choosing one is refused.
- A **service account** (token ``kind`` ``service_account``) or ``storage:write`` may
  choose an id that is already taken (replicas, repair, restore); an acting user token
  only a fresh one.
- A file's history (``uploaded_by``...) is stated by a service writing a copy for the
  original uploader: an acting token, or a service account holding ``storage:write``.
- A caller whose file scopes come only from the ``user`` role may PATCH, finalize or
  delete only files whose ``uploaded_by`` is their own ``sub``; operators, admins and
  service accounts may act on any file.
"""

from __future__ import annotations

from artstore.common.auth import Principal
from artstore.common.errors import Forbidden

SERVICE_KIND = "service_account"
# Roles that act on any file even through a token narrowed to files:* scopes.
ANY_FILE_ROLES = frozenset({"operator", "admin"})


def is_service(principal: Principal) -> bool:
    return principal.kind == SERVICE_KIND


def acting(principal: Principal) -> bool:
    """A token exchanged by a service for one SE (RFC 8693 ``act``)."""
    return principal.act is not None


def may_choose_id(principal: Principal) -> bool:
    return acting(principal) or principal.has("storage:write")


def may_state_history(principal: Principal) -> bool:
    return acting(principal) or (is_service(principal) and principal.has("storage:write"))


def may_take_any_id(principal: Principal) -> bool:
    """May store under an id that already exists elsewhere (replicas, repair, restore)."""
    return is_service(principal) or principal.has("storage:write")


def acts_on_any_file(principal: Principal) -> bool:
    return (
        is_service(principal)
        or principal.has("storage:write")
        or not ANY_FILE_ROLES.isdisjoint(principal.roles)
    )


def require_owner(principal: Principal, uploaded_by: str, file_id: str) -> None:
    """403 unless ``principal`` may change the file ``uploaded_by`` uploaded."""
    if uploaded_by != principal.sub and not acts_on_any_file(principal):
        raise Forbidden(
            "only the file's uploader, an operator or an admin may change this file",
            details={"file_id": file_id, "reason": "not_owner"},
        )
