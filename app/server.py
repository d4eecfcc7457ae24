"""The Starlette application: /graphql over HTTP and WebSocket, GraphiQL served from the
server itself, /metrics, /healthz and /readyz.

The lifespan owns the container: it opens the backends, loads the models in the
background (``/readyz`` answers 503 until they are loaded) and closes everything on
shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app.config import Settings, load_settings
from app.container import Container, build_container
from app.graphiql_page import graphiql_routes, offline_graphiql_html
from app.observability.logging import bind_request_id, clear_request_id, new_request_id
from app.observability.metrics import render_latest
from graphql_schema.context import Context, Services
from graphql_schema.schema import build_schema

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"


class RequestIdMiddleware:
    """Binds a request id (the client's X-Request-ID, or a new one) to every log line of
    the request and echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        rid = given if 0 < len(given) <= 128 and given.isprintable() else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        bind_request_id(rid)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((REQUEST_ID_HEADER.encode(), rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            clear_request_id()


class KGGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context and an offline GraphiQL page."""

    def __init__(self, container: Container, **kwargs: Any) -> None:
        self._services = Services(
            catalog=container.catalog,
            search=container.search,
            ingestion=container.ingestion,
            answers=container.answers,
        )
        super().__init__(build_schema(), **kwargs)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        rid = request.scope.get("state", {}).get("request_id") or new_request_id()
        return Context(services=self._services, request_id=rid)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(offline_graphiql_html())


def create_app(settings: Settings | None = None, container: Container | None = None) -> Starlette:
    settings = settings or load_settings()
    container = container or build_container(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await container.start()
        log.info(
            "server.started",
            host=settings.host,
            port=settings.port,
            graph=settings.graph_url,
            vectors=settings.vector_url,
            bus=settings.bus_url,
        )
        try:
            yield
        finally:
            await container.close()
            log.info("server.stopped")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = container.ready
        body = {
            "status": "ready" if ready else "loading",
            "models": {
                "extractor": container.extractor.loaded,
                "embedder": container.embedder.loaded,
            },
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    graphql = KGGraphQL(container, graphql_ide="graphiql" if settings.graphiql else None)
    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    if settings.graphiql:
        routes.extend(graphiql_routes())
    routes.append(WebSocketRoute("/graphql", graphql))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.container = container
    app.add_middleware(RequestIdMiddleware)
    return app
