"""The measuring client of ``query_latency``: timed GraphQL calls and the server's metrics.

One HTTP/1.1 keep-alive connection of the standard library's ``http.client``, one
request at a time, so a latency is one request's and nothing queues. That client's own
cost per request is small beside httpx's (the floor phase is measured with both, side by
side in every run), so the figures are the server's and the loopback's, not the
measuring client's; httpx still reads /metrics. Each phase also reads /metrics before and after, so the
report can say where the server spent the time and whether the caches behaved as the
phase's label claims.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

ASK_MODES = ("NAIVE", "LOCAL", "HYBRID")

# What a client would ask for: the passages, their scores and where they come from.
SEARCH = """query Search($q: String!, $k: Int!, $mode: SearchMode!) {
  search(query: $q, k: $k, mode: $mode) { score text chunk { id } document { id title } }
}"""
ASK = """query Ask($q: String!, $k: Int!, $mode: AskMode!) {
  ask(question: $q, k: $k, mode: $mode) {
    answer model mode
    citations { quote score chunk { id } document { id title } }
  }
}"""
# The floor: what any request costs through the same stack (HTTP, Starlette, GraphQL).
FLOOR = "query Floor { __typename }"
OPERATIONS = {"search": ("Search", SEARCH), "ask": ("Ask", ASK), "floor": ("Floor", FLOOR)}
# The floor's mode when it is measured through httpx instead (``ServerClient.call``).
HTTPX_FLOOR = "{ __typename }, httpx client"
JSON_HEADERS = {"content-type": "application/json"}


def embedded_env() -> dict[str, str]:
    """The embedded defaults, whatever this shell has set."""
    return {
        "KG_GRAPH_URL": "sqlite://",
        "KG_VECTOR_URL": "edge://",
        "KG_BUS_URL": "memory://",
        "KG_CACHE_URL": "memory://",
        "KG_JOBS_URL": "sqlite://",
        "KG_LLM_URL": "extractive://",
        # one client sending requests back to back is the load measured, not throttled
        "KG_RATE_LIMITS__ENABLED": "false",
    }


@dataclass(frozen=True)
class Stats:
    """Milliseconds."""

    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float


def stats(ms: Sequence[float]) -> Stats:
    if len(ms) < 2:
        raise ValueError("need at least two timings")
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return Stats(len(ms), statistics.fmean(ms), cuts[49], cuts[94], cuts[98], max(ms))


@dataclass(frozen=True)
class ServerSide:
    """Per request, from the server's metrics over one phase."""

    operation_ms: float  # mean GraphQL operation time
    backend: dict[str, tuple[float, float]]  # "port.method": (ms per request, calls per request)
    cache: dict[str, tuple[int, int]]  # namespace: (hits, misses)


@dataclass(frozen=True)
class Phase:
    operation: str  # search or ask
    mode: str
    state: str  # cold, embedding cached, warm
    client: Stats
    server: ServerSide


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class ServerClient:
    def __init__(self, base: str) -> None:
        self.base = base
        self._http = httpx.Client(timeout=120.0)  # /metrics, probes, the httpx floor
        parts = urlsplit(base)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._reset()
        self._http.close()

    def call(self, operation: str, text: str, mode: str, k: int) -> float:
        """One request; its latency in milliseconds. Raises on any GraphQL error. The
        floor in ``HTTPX_FLOOR`` mode goes through httpx, everything else through the
        keep-alive connection (reopened, and the request timed anew, if the server
        closed it while idle)."""
        name, query = OPERATIONS[operation]
        variables = {} if operation == "floor" else {"q": text, "k": k, "mode": mode}
        content = json.dumps(
            {"query": query, "operationName": name, "variables": variables}
        ).encode()
        if mode == HTTPX_FLOOR:
            started = time.perf_counter()
            response = self._http.post(
                f"{self.base}/graphql", content=content, headers=JSON_HEADERS
            )
            elapsed = (time.perf_counter() - started) * 1000
            status, raw = response.status_code, response.content
        else:
            elapsed, status, raw = self._post(content)
        body = json.loads(raw)
        if status != 200 or body.get("errors"):
            raise RuntimeError(f"{operation} {mode} {text!r}: {status} {body}")
        return elapsed

    def _post(self, content: bytes) -> tuple[float, int, bytes]:
        reused = self._conn is not None
        try:
            return self._timed_post(content)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self._reset()
            if not reused:
                raise
        return self._timed_post(content)  # the server let the idle connection go

    def _timed_post(self, content: bytes) -> tuple[float, int, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(*self._address, timeout=120.0)
        started = time.perf_counter()
        self._conn.request("POST", "/graphql", body=content, headers=JSON_HEADERS)
        response = self._conn.getresponse()
        raw = response.read()
        return (time.perf_counter() - started) * 1000, response.status, raw

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def phase(self, operation: str, mode: str, state: str, texts: Sequence[str], k: int) -> Phase:
        before = self.samples()
        timings = [self.call(operation, t, mode, k) for t in texts]
        after = self.samples()
        return Phase(
            operation,
            mode,
            state,
            stats(timings),
            _server_side(before, after, OPERATIONS[operation][0], len(texts)),
        )

    def samples(self) -> Samples:
        text = self._http.get(f"{self.base}/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def ask_unavailable(self) -> str:
        """Why ``ask`` cannot be measured on this server, or "" when it answers."""
        body = self._http.post(
            f"{self.base}/graphql", json={"query": '{ __type(name: "Query") { fields { name } } }'}
        ).json()
        fields = {f["name"] for f in body["data"]["__type"]["fields"]}
        if "ask" not in fields:
            return "not available: the server's schema has no `ask` field yet"
        try:
            self.call("ask", "Who was Teutberga?", ASK_MODES[0], 5)
        except (RuntimeError, httpx.HTTPError, http.client.HTTPException, OSError) as exc:
            return f"not available: a first ask failed ({str(exc)[:200]})"
        return ""


def _server_side(before: Samples, after: Samples, operation: str, requests: int) -> ServerSide:
    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    op_labels = {"operation_name": operation, "operation_type": "query"}
    op_count = delta("kg_graphql_operation_seconds_count", **op_labels)
    op_ms = 1000 * delta("kg_graphql_operation_seconds_sum", **op_labels) / max(op_count, 1)
    backend: dict[str, tuple[float, float]] = {}
    for name, labels in after:
        if name == "kg_backend_call_seconds_count":
            lab = dict(labels)
            calls = delta(name, **lab)
            if calls:
                seconds = delta("kg_backend_call_seconds_sum", **lab)
                key = f"{lab['port']}.{lab['method']}"
                backend[key] = (1000 * seconds / requests, calls / requests)
    cache: dict[str, tuple[int, int]] = {}
    for name, labels in after:
        if name in ("kg_cache_hits_total", "kg_cache_misses_total"):
            lab = dict(labels)
            hits = int(delta("kg_cache_hits_total", **lab))
            misses = int(delta("kg_cache_misses_total", **lab))
            if hits or misses:
                cache[lab["cache"]] = (hits, misses)
    return ServerSide(op_ms, backend, cache)
