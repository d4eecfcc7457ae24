"""Roles, enforced per field: ``permission_classes=[IsReader]`` and friends.

Every root field carries one (a test walks the schema to prove it): queries and
subscriptions need a reader, ingestion and deletion a writer, API keys an admin. Roles are
cumulative (an admin may read). A caller without a valid credential gets UNAUTHENTICATED
(with the reason its credential was refused), one whose role falls short FORBIDDEN.
Expiry is the verifier's business on HTTP (each request is verified anew, with its
leeway) and the session watcher's on WebSockets (closed when the token expires).

``has_permission`` raises our own errors instead of returning False, so the codes come
from ``graphql_schema.errors`` like any other and the message says which role is needed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from app.domain.auth import Role
from app.domain.errors import ForbiddenError, UnauthenticatedError
from app.security.authenticate import ANONYMOUS, BEARER_HINT
from graphql_schema.context import Context, Info


def require(context: Context, role: Role) -> None:
    """Raise unless the caller of ``context`` holds ``role`` (or a higher one)."""
    failure = context.auth_failure
    if failure is not None:
        # a fresh error per field: one exception object must not collect every traceback
        raise type(failure)(failure.message, retryable=failure.retryable, **failure.details)
    principal = context.principal
    if principal is ANONYMOUS:
        raise UnauthenticatedError(f"authentication required: {BEARER_HINT}")
    if not principal.may(role):
        held = principal.role.value if principal.role else "no role"
        raise ForbiddenError(f"this needs the {role.value} role; the caller has {held}")


class RolePermission(BasePermission):
    """Grants the field to callers holding ``role`` or a higher one."""

    role: ClassVar[Role]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        require(info.context, self.role)
        return True


class IsReader(RolePermission):
    role = Role.READER


class IsWriter(RolePermission):
    role = Role.WRITER


class IsAdmin(RolePermission):
    role = Role.ADMIN
