"""The counting proxy: forwards everything, counts and times methods, counts errors by code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from app.domain.errors import NotFoundError, UnavailableError
from app.observability.instrument import CallCounter, instrument, uninstrumented
from app.observability.metrics import sample_value


class Store:
    """A small port-like class: async and plain methods, properties, attributes."""

    name = "store"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._dimension = 384
        self.capabilities = frozenset({"fulltext"})

    @property
    def dimension(self) -> int:
        self.calls.append("dimension")
        return self._dimension

    async def get_things(self, ids: Sequence[str]) -> list[str]:
        self.calls.append("get_things")
        return [f"thing-{i}" for i in ids]

    async def fail(self, kind: str) -> None:
        if kind == "missing":
            raise NotFoundError("no such thing")
        if kind == "down":
            raise UnavailableError("backend down")
        raise RuntimeError("bug")

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    def explode(self) -> None:
        raise ValueError("plain failure")

    async def stream(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @staticmethod
    def helper(x: int) -> int:
        return x * 2


def calls(port: str, method: str) -> float:
    return sample_value("kg_backend_calls_total", {"port": port, "method": method})


def errors(port: str, method: str, code: str) -> float:
    return sample_value("kg_backend_errors_total", {"port": port, "method": method, "code": code})


def timed(port: str, method: str) -> float:
    return sample_value("kg_backend_call_seconds_count", {"port": port, "method": method})


async def test_async_methods_are_forwarded_counted_and_timed() -> None:
    target = Store()
    store = instrument("t_async", target)
    assert await store.get_things(["a", "b"]) == ["thing-a", "thing-b"]
    assert await store.get_things(ids=["c"]) == ["thing-c"]
    assert target.calls == ["get_things", "get_things"]
    assert calls("t_async", "get_things") == 2
    assert timed("t_async", "get_things") == 2
    labels = {"port": "t_async", "method": "get_things"}
    assert sample_value("kg_backend_call_seconds_sum", labels) > 0


def test_plain_methods_are_counted_and_timed() -> None:
    store = instrument("t_plain", Store())
    assert store.count(["ab", "c"]) == [2, 1]
    assert calls("t_plain", "count") == 1
    assert timed("t_plain", "count") == 1


async def test_errors_are_counted_by_kgerror_code_and_reraised() -> None:
    store = instrument("t_err", Store())
    with pytest.raises(NotFoundError):
        await store.fail("missing")
    with pytest.raises(UnavailableError):
        await store.fail("down")
    with pytest.raises(RuntimeError):
        await store.fail("bug")
    with pytest.raises(ValueError, match="plain failure"):
        store.explode()
    assert calls("t_err", "fail") == 3
    assert timed("t_err", "fail") == 3  # failures are timed too
    assert errors("t_err", "fail", "NOT_FOUND") == 1
    assert errors("t_err", "fail", "UNAVAILABLE") == 1
    assert errors("t_err", "fail", "INTERNAL") == 1
    assert errors("t_err", "explode", "INTERNAL") == 1


def test_properties_and_attributes_pass_through_uncounted() -> None:
    target = Store()
    store = instrument("t_props", target)
    assert store.dimension == 384
    assert store.capabilities == frozenset({"fulltext"})
    assert store.name == "store"
    assert store.helper(4) == 8  # a static function is not a call to the backend
    assert target.calls == ["dimension"]  # read from the target on each access
    target._dimension = 768
    assert store.dimension == 768
    assert CallCounter("t_props").snapshot() == {}


def test_attribute_writes_reach_the_target() -> None:
    target = Store()
    store = instrument("t_write", target)
    store.capabilities = frozenset({"vector"})
    assert target.capabilities == frozenset({"vector"})
    with pytest.raises(AttributeError):
        _ = store.no_such_attribute  # type: ignore[attr-defined]


async def test_async_generator_methods_pass_through_and_count_the_call() -> None:
    store = instrument("t_gen", Store())
    stream = store.stream(3)
    assert calls("t_gen", "stream") == 1
    assert [i async for i in stream] == [0, 1, 2]
    assert calls("t_gen", "stream") == 1


def test_a_method_replaced_on_the_target_is_seen() -> None:
    target = Store()
    store = instrument("t_replace", target)
    assert store.count(["x"]) == [1]
    target.count = lambda texts: [0 for _ in texts]  # type: ignore[method-assign]
    # An instance attribute holding a function is data, not a method: forwarded as is.
    assert store.count(["x"]) == [0]
    assert calls("t_replace", "count") == 1


def test_uninstrumented_unwraps() -> None:
    target = Store()
    assert uninstrumented(instrument("t_unwrap", target)) is target
    assert uninstrumented(target) is target
    assert "instrument('t_unwrap'" in repr(instrument("t_unwrap", target))


async def test_call_counter_diffs_per_method() -> None:
    store = instrument("t_counter", Store())
    await store.get_things(["warm-up"])
    counter = CallCounter("t_counter")
    before = counter.snapshot()
    assert before == {"get_things": 1.0}
    await store.get_things(["a"])
    await store.get_things(["b"])
    store.count(["c"])
    assert counter.calls_since(before) == {"get_things": 2, "count": 1}
    assert counter.calls_since() == {"get_things": 2, "count": 1}  # since construction
    assert counter.total_since(before) == 3
    # Other ports never leak in.
    await instrument("t_counter_other", Store()).get_things(["z"])
    assert counter.calls_since(before) == {"get_things": 2, "count": 1}
    assert CallCounter("t_counter").calls_since() == {}
