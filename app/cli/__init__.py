"""The ``kg`` command: serve, worker, ingest, export-schema, and API keys."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import graphql_schema
from app.cli import api_keys
from app.domain.errors import KGError

DEFAULT_SCHEMA_PATH = Path(graphql_schema.__file__).resolve().parent / "schema.graphql"


def _offline_models() -> None:
    """Nothing downloads a model at run time."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.config import load_settings
    from app.observability.logging import configure_logging
    from app.server import create_app

    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
        lifespan="on",
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from app.cli.worker import run_worker

    return asyncio.run(run_worker())


def cmd_ingest(args: argparse.Namespace) -> int:
    from app.cli.ingest import run_ingest

    return run_ingest(args)


def cmd_export_schema(args: argparse.Namespace) -> int:
    from graphql_schema.schema import schema

    text = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kg", description="GraphQL knowledge-graph server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (with in-process workers)")
    serve.add_argument(
        "--host",
        help="address to bind (KG_HOST, default 127.0.0.1); any other than loopback "
        "needs authentication configured (KG_AUTH_*)",
    )
    serve.add_argument("--port", type=int, help="port to bind (KG_PORT, default 8000)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run an ingestion worker (needs a shared bus)")
    worker.set_defaults(func=cmd_worker)

    ingest = sub.add_parser("ingest", help="send files to a running server")
    ingest.add_argument("paths", nargs="+", help="txt, md or jsonl files; - for stdin")
    ingest.add_argument(
        "--server",
        default=os.environ.get("KG_SERVER_URL", "http://127.0.0.1:8000/graphql"),
        help="GraphQL endpoint (KG_SERVER_URL)",
    )
    ingest.add_argument("--source", help="source recorded on every document")
    ingest.add_argument("--batch", type=int, default=20, help="documents per request")
    ingest.add_argument(
        "--format",
        choices=["auto", "text", "jsonl"],
        default="auto",
        help="how to read stdin and files without a known suffix",
    )
    ingest.add_argument("--no-wait", action="store_true", help="return once queued")
    ingest.add_argument("--timeout", type=float, default=3600, help="seconds to wait")
    ingest.set_defaults(func=cmd_ingest)

    api_keys.add_parsers(sub)

    export = sub.add_parser("export-schema", help="write the GraphQL schema (SDL)")
    export.add_argument("--output", default=str(DEFAULT_SCHEMA_PATH), help="file, or - for stdout")
    export.set_defaults(func=cmd_export_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _offline_models()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KGError as exc:
        print(f"kg: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
