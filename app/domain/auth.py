"""Who is asking: roles, the principal a request runs as, and API keys as clients see them.

Roles are cumulative: a writer may do what a reader may, an admin what a writer may.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    READER = "reader"  # queries and subscriptions
    WRITER = "writer"  # + ingest and delete
    ADMIN = "admin"  # + API keys and settings

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def grants(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, name: str) -> Role | None:
        """The role named ``name`` (case and spaces ignored), None for an unknown name."""
        try:
            return cls(name.strip().lower())
        except ValueError:
            return None


_RANKS = {Role.READER: 1, Role.WRITER: 2, Role.ADMIN: 3}

PrincipalKind = Literal["token", "api_key", "local", "open"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity a request or subscription runs as.

    ``kind``: ``token`` (a verified JWT), ``api_key``, ``local`` (no credentials are
    configured and the server is bound to loopback) or ``open`` (authentication switched
    off on purpose). ``expires_at`` is when the credential stops being valid (a token's
    ``exp``), so a live subscription can be closed then; ``key_id`` names the API key, so
    revoking it can close the subscriptions it opened."""

    subject: str
    roles: frozenset[Role]
    kind: PrincipalKind
    expires_at: datetime | None = None
    key_id: str | None = None

    @property
    def role(self) -> Role | None:
        """The highest role held, None when none."""
        return max(self.roles, key=lambda r: r.rank, default=None)

    def may(self, needed: Role) -> bool:
        return any(r.grants(needed) for r in self.roles)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as admins see it: never its secret, which is shown once at creation."""

    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
