"""Counting proxies around port implementations.

``instrument("graph", store)`` returns an object that behaves like ``store`` and records,
for every method call, ``kg_backend_calls_total{port,method}``, its duration in
``kg_backend_call_seconds`` and, when it raises, ``kg_backend_errors_total`` by the
``KGError`` code (anything else counts as ``INTERNAL``). These counters are how tests and
dashboards prove that a nested query costs a constant number of backend round trips.

What is wrapped: methods of the target (bound methods found on its class). Coroutine
methods are timed until they finish; plain methods until they return; async generator
methods are counted when called and then pass through untouched. Properties and data
attributes (``capabilities``, ``dimension``, ``name``) are read from the target on every
access and never counted. Attribute writes go to the target. Special methods
(``len(proxy)``, ``async with proxy``) are not forwarded: ports do not use them.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from app.domain.errors import KGError
from app.observability.metrics import (
    BACKEND_CALL_SECONDS,
    BACKEND_CALLS,
    BACKEND_ERRORS,
)

T = TypeVar("T")

_OWN = ("_kg_port", "_kg_target", "_kg_wrappers")


def error_code(exc: BaseException) -> str:
    """The code an error is counted under."""
    return exc.code if isinstance(exc, KGError) else "INTERNAL"


class _Instrumented:
    """The proxy; built by ``instrument``."""

    __slots__ = _OWN

    _kg_port: str
    _kg_target: Any
    _kg_wrappers: dict[str, tuple[object, Callable[..., Any]]]

    def __init__(self, port: str, target: object) -> None:
        object.__setattr__(self, "_kg_port", port)
        object.__setattr__(self, "_kg_target", target)
        object.__setattr__(self, "_kg_wrappers", {})

    def __getattr__(self, name: str) -> Any:
        target = self._kg_target
        value = getattr(target, name)
        if not inspect.ismethod(value) or value.__self__ is not target:
            return value  # a property's value, a data attribute, a classmethod...
        # Cached per underlying function, so a method replaced on the target is seen.
        cached = self._kg_wrappers.get(name)
        if cached is not None and cached[0] is value.__func__:
            return cached[1]
        wrapper = _wrap(self._kg_port, name, value)
        self._kg_wrappers[name] = (value.__func__, wrapper)
        return wrapper

    def __setattr__(self, name: str, value: Any) -> None:
        self._kg_wrappers.pop(name, None)
        setattr(self._kg_target, name, value)

    def __delattr__(self, name: str) -> None:
        self._kg_wrappers.pop(name, None)
        delattr(self._kg_target, name)

    def __dir__(self) -> list[str]:
        return dir(self._kg_target)

    def __repr__(self) -> str:
        return f"instrument({self._kg_port!r}, {self._kg_target!r})"


def _wrap(port: str, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    calls = BACKEND_CALLS.labels(port=port, method=name)
    seconds = BACKEND_CALL_SECONDS.labels(port=port, method=name)

    def failed(exc: BaseException) -> None:
        BACKEND_ERRORS.labels(port=port, method=name, code=error_code(exc)).inc()

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        def call_agen(*args: Any, **kwargs: Any) -> Any:
            calls.inc()
            return method(*args, **kwargs)

        return call_agen

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            calls.inc()
            start = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                failed(exc)
                raise
            finally:
                seconds.observe(time.perf_counter() - start)

        return call_async

    @functools.wraps(method)
    def call_sync(*args: Any, **kwargs: Any) -> Any:
        calls.inc()
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            failed(exc)
            raise
        finally:
            seconds.observe(time.perf_counter() - start)

    return call_sync


def instrument(port_name: str, target: T) -> T:
    """``target`` behind a proxy that counts and times its method calls under ``port_name``."""
    return cast(T, _Instrumented(port_name, target))


def uninstrumented(obj: T) -> T:
    """The object behind a proxy (or ``obj`` itself): for code that needs the concrete type."""
    if isinstance(obj, _Instrumented):
        return cast(T, obj._kg_target)
    return obj


class CallCounter:
    """Counts the calls made to one port between two points of a test.

    >>> counter = CallCounter("graph")
    >>> before = counter.snapshot()
    >>> ...  # run a query
    >>> counter.calls_since(before)  # {"get_entities": 1, "get_documents": 1}

    ``calls_since()`` without an argument diffs against the counts at construction.
    """

    def __init__(self, port: str) -> None:
        self.port = port
        self._start = self.snapshot()

    def snapshot(self) -> dict[str, float]:
        """Calls so far, per method of this port."""
        counts: dict[str, float] = {}
        for metric in BACKEND_CALLS.collect():
            for sample in metric.samples:
                if sample.name == "kg_backend_calls_total" and sample.labels["port"] == self.port:
                    counts[sample.labels["method"]] = sample.value
        return counts

    def calls_since(self, snapshot: Mapping[str, float] | None = None) -> dict[str, int]:
        """Calls per method since ``snapshot``; methods not called are left out."""
        before = self._start if snapshot is None else snapshot
        diff = {
            method: int(value - before.get(method, 0.0))
            for method, value in self.snapshot().items()
        }
        return {method: n for method, n in diff.items() if n > 0}

    def total_since(self, snapshot: Mapping[str, float] | None = None) -> int:
        """All calls to this port since ``snapshot``."""
        return sum(self.calls_since(snapshot).values())
