"""``kg ingest``: send documents to a running server and follow them to the end.

A server that enforces authentication needs a writer's credential: an API key (or a
token) in ``KG_API_KEY``, sent as ``Authorization: Bearer``; it is never printed.

Jobs are followed by polling ``ingestionJob`` in batches (aliases, one request for up to
100 jobs), which works through any proxy; a progress bar counts finished documents, and
a closing summary says what the graph gained.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.reading import FileDocument, read_documents
from app.domain.errors import BadInputError, KGError, UnavailableError

INGEST = """mutation Ingest($inputs: [DocumentInput!]!) {
  ingestDocuments(inputs: $inputs) { id status }
}"""
STATS = "{ stats { documents chunks entities relations } }"
POLL_BATCH = 100


class GraphQLClient:
    def __init__(self, url: str, timeout: float = 60.0, credential: str | None = None) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._http.post(self.url, json={"query": query, "variables": variables})
        except httpx.HTTPError as exc:
            raise UnavailableError(f"cannot reach the server at {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise UnavailableError(
                f"{self.url} answered HTTP {response.status_code} without GraphQL JSON"
            ) from exc
        errors = body.get("errors")
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("code", "ERROR")
            raise KGError(f"{code}: {first.get('message')}")
        data: dict[str, Any] = body["data"]
        return data

    def close(self) -> None:
        self._http.close()


@dataclass
class Outcome:
    completed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    pending: int = 0


def run_ingest(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    if args.batch < 1:
        raise BadInputError("--batch must be at least 1")
    docs = read_documents(args.paths, args.format, args.source)
    if not docs:
        raise BadInputError("nothing to ingest: the inputs hold no documents")
    client = GraphQLClient(args.server, credential=os.environ.get("KG_API_KEY") or None)
    try:
        before = client.call(STATS)["stats"]
        jobs = _submit(client, docs, args.batch)
        console.print(f"queued {len(jobs)} document(s) at {args.server}")
        if args.no_wait:
            return 0
        outcome = _follow(client, jobs, docs, args.timeout, console)
        after = client.call(STATS)["stats"]
    finally:
        client.close()
    _summary(console, outcome, before, after)
    return 0 if not outcome.failed and not outcome.pending else 1


def _submit(client: GraphQLClient, docs: list[FileDocument], batch: int) -> list[str]:
    jobs: list[str] = []
    for start in range(0, len(docs), batch):
        part = docs[start : start + batch]
        try:
            data = client.call(INGEST, {"inputs": [d.as_input() for d in part]})
        except KGError as exc:
            where = ", ".join(d.origin for d in part[:3]) + ("..." if len(part) > 3 else "")
            raise KGError(f"{exc.message} (documents from {where})") from exc
        jobs.extend(j["id"] for j in data["ingestDocuments"])
    return jobs


def _follow(
    client: GraphQLClient,
    jobs: list[str],
    docs: list[FileDocument],
    timeout: float,
    console: Console,
) -> Outcome:
    outcome = Outcome()
    origin = dict(zip(jobs, (d.origin for d in docs), strict=True))
    waiting = list(jobs)
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=not sys.stderr.isatty()) as bar:
        task = bar.add_task("ingest", total=len(jobs))
        while waiting and time.monotonic() < deadline:
            still: list[str] = []
            for start in range(0, len(waiting), POLL_BATCH):
                part = waiting[start : start + POLL_BATCH]
                fields = " ".join(
                    f'j{i}: ingestionJob(id: "{job}") {{ id status error }}'
                    for i, job in enumerate(part)
                )
                data = client.call("{ " + fields + " }")
                for i, job in enumerate(part):
                    state = data.get(f"j{i}")
                    status = state["status"] if state else "FAILED"
                    if status == "COMPLETED":
                        outcome.completed += 1
                    elif status == "FAILED":
                        error = (state or {}).get("error") or "job not found"
                        outcome.failed.append((origin[job], error))
                    else:
                        still.append(job)
            bar.update(task, completed=len(jobs) - len(still))
            waiting = still
            if waiting:
                time.sleep(0.5)
    outcome.pending = len(waiting)
    return outcome


def _summary(
    console: Console, outcome: Outcome, before: dict[str, int], after: dict[str, int]
) -> None:
    console.print(
        f"done: {outcome.completed} completed, {len(outcome.failed)} failed"
        + (f", {outcome.pending} still running" if outcome.pending else "")
    )
    for origin, error in outcome.failed[:20]:
        console.print(f"  failed {origin}: {error}")
    gained = {k: after[k] - before[k] for k in ("documents", "chunks", "entities", "relations")}
    console.print(
        "graph: "
        + ", ".join(
            f"{after[k]} {k} (+{gained[k]})" for k in ("documents", "entities", "relations")
        )
        + f", {after['chunks']} chunks"
    )
