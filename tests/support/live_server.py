"""Real ``kg serve`` and ``kg worker`` processes, for end-to-end and scale-out tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class LiveServer:
    base: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def graphql(self) -> str:
        return f"{self.base}/graphql"

    @property
    def ws(self) -> str:
        return self.graphql.replace("http://", "ws://")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def kg_env(data_dir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``kg`` process: this one's, its own data dir, offline models."""
    return {
        **os.environ,
        "KG_DATA_DIR": str(data_dir),
        "KG_LOG_JSON": "true",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }


def _spawn(args: list[str], data_dir: Path, env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "server.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=REPO,
            env=kg_env(data_dir, env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def live_server(
    data_dir: Path, env: dict[str, str] | None = None, timeout: float = 180.0
) -> Iterator[LiveServer]:
    """Start ``kg serve`` and wait until /readyz says the models are loaded."""
    port = free_port()
    process = _spawn(["serve", "--host", "127.0.0.1", "--port", str(port)], data_dir, env)
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, data_dir / "server.log", process)
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        stop(process)


@dataclass(frozen=True)
class LiveWorker:
    data_dir: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")


@contextmanager
def live_worker(
    data_dir: Path, env: dict[str, str] | None = None, timeout: float = 180.0
) -> Iterator[LiveWorker]:
    """Start ``kg worker`` and wait until it says it has started (models loaded)."""
    worker = LiveWorker(data_dir, _spawn(["worker"], data_dir, env))
    try:
        deadline = time.monotonic() + timeout
        while '"worker.started"' not in worker.log():
            if worker.process.poll() is not None:
                raise RuntimeError(f"kg worker exited early:\n{worker.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kg worker not ready after {timeout}s:\n{worker.log()[-4000:]}")
            time.sleep(0.25)
        yield worker
    finally:
        stop(worker.process)


def _wait_ready(server: LiveServer, timeout: float) -> None:
    wait_for(f"{server.base}/readyz", server.process, server.log, timeout)


def wait_for(
    url: str, process: subprocess.Popen[bytes], log: Callable[[], str], timeout: float
) -> None:
    """Until ``url`` answers 200: a RuntimeError with the end of ``log()`` if the
    process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kg serve exited early:\n{log()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"kg serve not ready after {timeout}s:\n{log()[-4000:]}")
