"""Readiness probes for the loopback servers started by ops/services/*.sh.

A port that accepts connections is not a ready server: Neo4j opens Bolt before its
databases answer and Kafka listens before the broker is unfenced. So each probe asks the
real question with the client the app uses (neo4j async driver, aiokafka), retrying until
a deadline, and gives up early when the server process has died.

Usage::

    probe.py neo4j --url bolt://127.0.0.1:7687 --user neo4j --password-file F --pid N
    probe.py kafka --bootstrap 127.0.0.1:9092 --pid N

Exit status: 0 ready, 1 timed out, 2 the process exited, 3 refused (e.g. bad password).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

READY, TIMED_OUT, DIED, REFUSED = 0, 1, 2, 3


class RefusedError(Exception):
    """The server answered but said no: waiting longer will not help."""


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except (ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited


async def _neo4j_once(url: str, user: str, password: str) -> str:
    import neo4j
    from neo4j.exceptions import AuthError

    auth = (user, password) if password else None
    driver = neo4j.AsyncGraphDatabase.driver(url, auth=auth, connection_timeout=3.0)
    try:
        await driver.verify_connectivity()
        records, _, _ = await driver.execute_query("RETURN 1 AS one")
        if records[0]["one"] != 1:
            raise RuntimeError(f"RETURN 1 answered {records[0]['one']!r}")
        info = await driver.get_server_info()
        return info.agent
    except AuthError as exc:
        raise RefusedError(f"Neo4j refused the credentials for user {user!r}: {exc}") from exc
    finally:
        await driver.close()


async def _kafka_once(bootstrap: str) -> str:
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        brokers = cluster.get("brokers") or []
        if not brokers:
            raise RuntimeError("metadata answered with no brokers")
        return f"cluster {cluster.get('cluster_id')} with {len(brokers)} broker(s)"
    finally:
        await admin.close()


async def _poll(check: Callable[[], Awaitable[str]], wait_s: float, pid: int | None) -> int:
    deadline = time.monotonic() + wait_s
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        if not _alive(pid):
            print(f"probe: process {pid} exited before it was ready", file=sys.stderr)
            return DIED
        try:
            answer = await asyncio.wait_for(check(), timeout=15)
        except RefusedError as exc:
            print(f"probe: {exc}", file=sys.stderr)
            return REFUSED
        except Exception as exc:  # any failure means "not yet"; the last one is reported
            last_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5)
        else:
            print(f"probe: ready: {answer}")
            return READY
    print(f"probe: not ready after {wait_s:.0f}s; last error: {last_error}", file=sys.stderr)
    return TIMED_OUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="service", required=True)
    neo = sub.add_parser("neo4j", help="Bolt verify_connectivity and RETURN 1")
    neo.add_argument("--url", required=True)
    neo.add_argument("--user", default="neo4j")
    neo.add_argument("--password-file", type=Path, help="absent or empty: auth disabled")
    kafka = sub.add_parser("kafka", help="a metadata request answers with a broker")
    kafka.add_argument("--bootstrap", required=True)
    for each in (neo, kafka):
        each.add_argument("--timeout", type=float, default=120.0, help="seconds")
        each.add_argument("--pid", type=int, help="give up when this process exits")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Connection refusals while the server boots are expected; the probe reports its own.
    logging.basicConfig(level=logging.CRITICAL)
    check: Callable[[], Awaitable[str]]
    if args.service == "neo4j":
        password = ""
        if args.password_file is not None and args.password_file.exists():
            password = args.password_file.read_text(encoding="utf-8").strip()
        url, user = args.url, args.user

        def check() -> Awaitable[str]:
            return _neo4j_once(url, user, password)
    else:
        bootstrap = args.bootstrap

        def check() -> Awaitable[str]:
            return _kafka_once(bootstrap)

    return asyncio.run(_poll(check, args.timeout, args.pid))


if __name__ == "__main__":
    sys.exit(main())
