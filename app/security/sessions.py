"""Live WebSocket sessions end when their credential does.

A subscription authenticates once, in ``connection_init``, and may then run for hours;
the credential it showed may expire (a token's ``exp``) or be revoked (an API key) in
the meantime. ``SessionWatcher`` holds the live sessions whose credential can end and,
every ``interval`` seconds, closes those whose token has expired and those whose API key
was revoked, by this process or any other sharing the key store (``revoked_since``).

The store is polled only while a session opened with an API key is live. Each poll asks
for the revocations since the previous poll minus ``overlap`` seconds, so a revoking
process whose clock lags ours by less than that is still seen; seeing one twice is
harmless. A failed poll is logged and retried on the next tick, with the same start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from app.domain.auth import Principal
from app.domain.errors import KGError
from app.security.api_keys import ApiKeys

log = structlog.get_logger(__name__)

#: graphql-transport-ws names 4401 Unauthorized; it is what a client reauthenticates on.
CLOSE_CODE = 4401

Closer = Callable[[int, str], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False, slots=True)
class Session:
    """One WebSocket connection: who it runs as (once authenticated) and how to close
    it. ``close(code, reason)`` must not raise, even on a connection closed already."""

    close: Closer
    principal: Principal | None = None

    @property
    def ends(self) -> bool:
        """Whether its credential can end while it is open."""
        p = self.principal
        return p is not None and (p.expires_at is not None or p.key_id is not None)


class SessionWatcher:
    """Closes live sessions whose credential expired or was revoked (see module doc)."""

    def __init__(
        self,
        api_keys: ApiKeys,
        *,
        interval: float = 1.0,
        overlap: float = 30.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._api_keys = api_keys
        self.interval = interval
        self._overlap = timedelta(seconds=overlap)
        self._clock = clock
        self._sessions: set[Session] = set()
        self._since = clock() - self._overlap

    def __len__(self) -> int:
        return len(self._sessions)

    def watch(self, session: Session) -> None:
        """Watch ``session`` (once authenticated) if its credential can end."""
        if session.ends:
            self._sessions.add(session)

    def forget(self, session: Session) -> None:
        """The connection ended: stop watching it."""
        self._sessions.discard(session)

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except KGError as exc:
                log.warning("sessions.check_failed", code=exc.code, error=exc.message)

    async def check(self) -> int:
        """Close the sessions whose credential ended; how many were closed."""
        now = self._clock()
        watched = [(s, s.principal) for s in self._sessions if s.principal is not None]
        ending: dict[Session, tuple[Principal, str]] = {}
        for session, principal in watched:
            if principal.expires_at is not None and principal.expires_at <= now:
                ending[session] = (principal, "credential expired")
        keyed = [(s, p) for s, p in watched if s not in ending and p.key_id is not None]
        if keyed:
            revoked = set(await self._api_keys.revoked_since(self._since))
            for session, principal in keyed:
                if principal.key_id in revoked:
                    ending[session] = (principal, "API key revoked")
        self._since = now - self._overlap
        for session, (principal, reason) in ending.items():
            self._sessions.discard(session)
            log.info("session.closed", subject=principal.subject, reason=reason)
            await session.close(CLOSE_CODE, f"Unauthorized: {reason}")
        return len(ending)
