"""ApiKeyStore: API keys shared by every API process, stored as salted hashes only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.domain.auth import ApiKey


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    """A key with what verifies its secret: ``digest`` of the secret with ``salt``."""

    key: ApiKey
    salt: bytes
    digest: bytes


class ApiKeyStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, stored: StoredApiKey) -> None:
        """Record a new key; ConflictError when its id exists already."""

    async def get(self, key_id: str) -> StoredApiKey | None:
        """The key with its salt and digest, revoked or not; None when unknown."""

    async def all(self, include_revoked: bool) -> list[ApiKey]:
        """Every key, oldest first."""

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked at ``at`` (a key revoked already keeps its first time);
        the key as it is now, None when unknown."""

    async def revoked_since(self, since: datetime) -> list[str]:
        """Ids of the keys revoked at or after ``since``: how a process learns that a key
        another process revoked must close its live subscriptions."""
