"""Structured logging: JSON fields, request ids across awaits, redaction, stdlib routing."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from app.domain.errors import ConfigurationError
from app.observability.logging import (
    REDACTED,
    bind_request_id,
    clear_request_id,
    configure_logging,
    current_request_id,
    get_logger,
    new_request_id,
)


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    """JSON logging into a buffer; the previous root configuration is restored after."""
    root = logging.getLogger()
    saved_level = root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", json=True, stream=buffer)
    structlog.contextvars.clear_contextvars()
    yield buffer
    structlog.contextvars.clear_contextvars()
    for handler in list(root.handlers):
        if handler.__class__.__name__ == "_KGHandler":
            root.removeHandler(handler)
    root.setLevel(saved_level)
    structlog.reset_defaults()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_json_line_has_event_level_logger_and_utc_timestamp(out: io.StringIO) -> None:
    get_logger("kg.test").info("document.stored", document_id="d1", chunks=3)
    [line] = lines(out)
    assert line["event"] == "document.stored"
    assert line["level"] == "info"
    assert line["logger"] == "kg.test"
    assert line["document_id"] == "d1"
    assert line["chunks"] == 3
    assert line["timestamp"].endswith("Z")
    assert "T" in line["timestamp"]


async def test_request_id_follows_the_request_across_awaits_and_tasks(out: io.StringIO) -> None:
    log = get_logger("kg.test")

    async def handle(rid: str) -> None:
        bind_request_id(rid)
        log.info("start")
        await asyncio.sleep(0.01)
        await asyncio.create_task(child())
        log.info("end")

    async def child() -> None:
        await asyncio.sleep(0)
        log.info("child")

    # Two requests interleaved on one loop: each line carries its own request's id.
    await asyncio.gather(asyncio.create_task(handle("r-1")), asyncio.create_task(handle("r-2")))
    seen = {
        (line["event"], line["request_id"]) for line in lines(out) if line["logger"] == "kg.test"
    }
    assert seen == {(event, rid) for event in ("start", "child", "end") for rid in ("r-1", "r-2")}
    assert current_request_id() is None  # tasks bound their own copies of the context


def test_clear_request_id(out: io.StringIO) -> None:
    bind_request_id("r-9")
    assert current_request_id() == "r-9"
    clear_request_id()
    get_logger("kg.test").info("after")
    assert "request_id" not in lines(out)[0]


def test_secrets_are_redacted_by_key_at_any_depth(out: io.StringIO) -> None:
    get_logger("kg.test").info(
        "connecting",
        password="hunter2",
        api_key="k-123",
        Authorization="Bearer abc",
        nested={"client_secret": "s3", "user": "ann", "refresh-token": "t"},
        headers=[{"x-api-key": "zzz"}],
        token_count=17,
    )
    [line] = lines(out)
    assert line["password"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["Authorization"] == REDACTED
    assert line["nested"] == {"client_secret": REDACTED, "user": "ann", "refresh-token": REDACTED}
    assert line["headers"] == [{"x-api-key": REDACTED}]  # dashes count as underscores
    assert line["token_count"] == 17  # a count, not a secret
    raw = out.getvalue()
    for secret in ("hunter2", "k-123", "Bearer abc", '"s3"', "zzz"):
        assert secret not in raw


def test_url_passwords_are_masked_in_values_and_messages(out: io.StringIO) -> None:
    get_logger("kg.test").info(
        "graph at bolt://neo4j:pa55@db:7687", url="redis://:r3dis@cache:6379/0"
    )
    logging.getLogger("neo4j").warning("retrying neo4j://admin:topsecret@db:7687")
    get_logger("kg.test").info("bus at %s", "kafka://u:k4fka@broker:9092")
    raw = out.getvalue()
    for secret in ("pa55", "r3dis", "topsecret", "k4fka"):
        assert secret not in raw
    first, second, third = lines(out)
    assert first["event"] == f"graph at bolt://neo4j:{REDACTED}@db:7687"
    assert first["url"] == f"redis://:{REDACTED}@cache:6379/0"
    assert second["event"] == f"retrying neo4j://admin:{REDACTED}@db:7687"
    assert third["event"] == f"bus at kafka://u:{REDACTED}@broker:9092"


def test_callers_dicts_are_not_mutated_by_redaction(out: io.StringIO) -> None:
    settings = {"password": "p"}
    get_logger("kg.test").info("settings", settings=settings)
    assert settings == {"password": "p"}
    assert lines(out)[0]["settings"] == {"password": REDACTED}


def test_stdlib_loggers_share_format_and_context(out: io.StringIO) -> None:
    bind_request_id("r-std")
    logging.getLogger("aiokafka").warning("broker %s gone", "b1", extra={"attempt": 2})
    [line] = lines(out)
    assert "message" not in line
    assert line["event"] == "broker b1 gone"
    assert line["level"] == "warning"
    assert line["logger"] == "aiokafka"
    assert line["request_id"] == "r-std"
    assert line["attempt"] == 2
    assert line["timestamp"].endswith("Z")


def test_uvicorn_loggers_are_routed_through_our_handler(out: io.StringIO) -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    assert uvicorn_error.handlers == []
    assert uvicorn_error.propagate is True
    uvicorn_error.info("Started server process")
    assert lines(out)[0]["logger"] == "uvicorn.error"


def test_exceptions_are_structured_tracebacks(out: io.StringIO) -> None:
    log = get_logger("kg.test")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", job_id="j1")
    try:
        raise KeyError("k")
    except KeyError:
        logging.getLogger("neo4j").exception("driver failed")
    ours, foreign = lines(out)
    for line, exc_type, value in ((ours, "ValueError", "boom"), (foreign, "KeyError", "'k'")):
        [exc] = line["exception"]
        assert exc["exc_type"] == exc_type
        assert exc["exc_value"] == value
        assert exc["frames"][-1]["name"].startswith("test_exceptions")
    assert ours["job_id"] == "j1"


def test_level_filters_both_structlog_and_stdlib() -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.level
    try:
        configure_logging("warning", json=True, stream=buffer)
        get_logger("kg.test").info("hidden")
        logging.getLogger("kg.std").info("hidden too")
        get_logger("kg.test").warning("shown")
        assert [line["event"] for line in lines(buffer)] == ["shown"]
    finally:
        for handler in list(root.handlers):
            if handler.__class__.__name__ == "_KGHandler":
                root.removeHandler(handler)
        root.setLevel(saved)
        structlog.reset_defaults()


def test_configuring_twice_does_not_duplicate_lines(out: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging("DEBUG", json=True, stream=second)
    get_logger("kg.test").info("once")
    logging.getLogger("kg.std").info("once too")
    assert out.getvalue() == ""
    assert [line["event"] for line in lines(second)] == ["once", "once too"]


def test_console_renderer_when_json_is_false_or_not_requested_on_a_tty() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    saved = root.level
    try:
        for stream, json_flag in ((io.StringIO(), False), (Tty(), None)):
            configure_logging("INFO", json=json_flag, stream=stream)
            get_logger("kg.test").info("hello", password="pw", n=1)
            text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())  # colours on a TTY
            assert "hello" in text
            assert "n=1" in text
            assert "pw" not in text.replace("password", "")
            with pytest.raises(json.JSONDecodeError):
                json.loads(text.splitlines()[0])
        # json=None on a non-terminal stream: JSON lines.
        plain = io.StringIO()
        configure_logging("INFO", json=None, stream=plain)
        get_logger("kg.test").info("hello")
        assert lines(plain)[0]["event"] == "hello"
    finally:
        for handler in list(root.handlers):
            if handler.__class__.__name__ == "_KGHandler":
                root.removeHandler(handler)
        root.setLevel(saved)
        structlog.reset_defaults()


def test_unknown_level_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="LOUD"):
        configure_logging("LOUD", json=True, stream=io.StringIO())


def test_new_request_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in ids)
