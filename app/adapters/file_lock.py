"""An exclusive, non-blocking OS lock on a file: one owner for an on-disk store.

Embedded engines keep state in memory that a second writer would corrupt or miss, so
the adapter that opens one takes this lock first and refuses to start, with a
``ConflictError`` naming the path and the owner's pid, when someone else holds it.
``flock`` locks belong to an open file description, so a second instance in the same
process conflicts too, and the kernel drops the lock when its owner dies (no stale
locks after a crash).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from app.domain.errors import ConfigurationError, ConflictError


class FileLock:
    """Holds ``path`` exclusively between ``acquire`` and ``release``."""

    def __init__(self, path: Path, *, owner: str) -> None:
        self.path = path
        self.owner = owner  # what the lock protects, named in the error
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock or raise ``ConflictError`` at once (never waits)."""
        if self._file is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the lock file {self.path}: {exc}", path=str(self.path)
            ) from exc
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise ConflictError(
                f"{self.owner} at {self.path.parent} is already open in another process or "
                f"instance (lock {self.path} held by pid {holder}); one process owns it",
                path=str(self.path.parent),
            ) from exc
        except OSError as exc:
            file.close()
            raise ConfigurationError(
                f"cannot lock {self.path}: {exc}", path=str(self.path)
            ) from exc
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._file = file

    def release(self) -> None:
        """Drop the lock (idempotent). The file stays: removing it would race a waiter."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        finally:
            file.close()
