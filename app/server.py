"""The Starlette application: /graphql over HTTP and WebSocket, GraphiQL served from the
server itself, /metrics, /healthz and /readyz.

The lifespan owns the container: it opens the backends, loads the models in the
background (``/readyz`` answers 503 until they are loaded) and closes everything on
shutdown.

Authentication (see ``app.security.auth_setup``): ``create_app`` refuses a non-loopback
address without credentials configured. An HTTP request is authenticated from its
headers when its context is built; a refused credential does not fail the request
outright: every field needing a role answers UNAUTHENTICATED (HTTP 200, the GraphQL way,
with ``WWW-Authenticate: Bearer error="invalid_token"``), while ``__typename`` still
works. A WebSocket is authenticated from its ``connection_init`` payload and refused
with close code 4403 (graphql-transport-ws; graphql-ws gets a ``connection_error``);
once open, it is closed with 4401 when its token expires or its API key is revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import DisableIntrospection
from strawberry.types.unset import UnsetType

from app.config import Settings, load_settings
from app.container import Container, build_container
from app.domain.errors import KGError, UnauthenticatedError
from app.graphiql_page import graphiql_routes, offline_graphiql_html
from app.observability.logging import bind_request_id, clear_request_id, new_request_id
from app.observability.metrics import render_latest
from app.security.auth_setup import build_authenticator, decide_mode, describe
from app.security.authenticate import ANONYMOUS, Authenticator
from app.security.cors import CorsSettings, cors_middleware
from app.security.loopback_hosts import LoopbackHostsOnly
from app.security.sessions import Closer, Session, SessionWatcher
from graphql_schema.context import Context, Services
from graphql_schema.limits import QueryLimits, query_limits
from graphql_schema.rate_limit import rate_limits
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
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
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
    """Strawberry's ASGI app with our context, authentication and an offline GraphiQL page."""

    def __init__(
        self,
        container: Container,
        auth: Authenticator,
        sessions: SessionWatcher,
        extensions: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._services = services_of(container)
        self._auth = auth
        self._sessions = sessions
        super().__init__(build_schema(extensions=extensions), **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        websocket = WebSocket(scope, receive=receive, send=send)
        context = await self.get_context(websocket, websocket)
        try:
            await self.run(websocket, context=context)
        finally:
            if context.session is not None:
                self._sessions.forget(context.session)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        rid = request.scope.get("state", {}).get("request_id") or new_request_id()
        client = request.client.host if request.client else "unknown"
        if isinstance(request, WebSocket):  # authenticated by on_ws_connect
            return Context(
                services=self._services,
                request_id=rid,
                principal=ANONYMOUS,
                client=client,
                auth_failure=UnauthenticatedError("send credentials in connection_init"),
                session=Session(close=_closer(request)),
            )
        sub_response = response if isinstance(response, Response) else None
        try:
            principal = await self._auth.from_headers(request.headers)
        except KGError as exc:
            if isinstance(exc, UnauthenticatedError) and sub_response is not None:
                sub_response.headers["WWW-Authenticate"] = _challenge(exc)
            return Context(
                services=self._services,
                request_id=rid,
                principal=ANONYMOUS,
                client=client,
                auth_failure=exc,
                response=sub_response,
            )
        return Context(
            services=self._services,
            request_id=rid,
            principal=principal,
            client=client,
            response=sub_response,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        try:
            principal = await self._auth.from_connection_params(context.connection_params)
        except KGError as exc:
            # graphql-transport-ws closes with 4403; graphql-ws sends this payload first
            raise ConnectionRejectionError(
                {"message": exc.message, "extensions": {"code": exc.code}}
            ) from exc
        context.principal, context.auth_failure = principal, None
        if context.session is not None:
            context.session.principal = principal
            self._sessions.watch(context.session)
        return UnsetType()  # a plain connection_ack

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(offline_graphiql_html())


def services_of(container: Container) -> Services:
    """What the GraphQL layer is handed of a container (also what in-process callers of
    the schema, tests and the eval harness, build their context from)."""
    return Services(
        catalog=container.catalog,
        search=container.search,
        ingestion=container.ingestion,
        answers=container.answers,
        api_keys=container.api_keys,
    )


def _query_limits(settings: Settings) -> QueryLimits:
    caps = settings.limits
    return QueryLimits(
        max_document_bytes=caps.max_query_bytes,
        max_tokens=caps.max_query_tokens,
        max_depth=caps.max_query_depth,
        max_aliases=caps.max_query_aliases,
        max_fields=caps.max_query_fields,
        max_cost=caps.max_query_cost,
        max_page_size=caps.max_page_size,
        max_search_k=caps.max_search_k,
        max_neighborhood=caps.max_neighborhood,
    )


def _challenge(exc: UnauthenticatedError) -> str:
    """RFC 6750: no credential gets a bare challenge, a refused one says it is invalid."""
    if exc.details.get("reason") == "missing":
        return 'Bearer realm="kg"'
    return 'Bearer realm="kg", error="invalid_token"'


def _closer(websocket: WebSocket) -> Closer:
    async def close(code: int, reason: str) -> None:
        # the client may have gone, or the socket closed already: nothing left to do
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(code=code, reason=reason)

    return close


def create_app(settings: Settings | None = None, container: Container | None = None) -> Starlette:
    """The application. Raises ``ConfigurationError`` when it would listen on a
    non-loopback address without authentication (see ``app.security.auth_setup``)."""
    settings = settings or load_settings()
    decide_mode(settings.host, settings.auth)  # refuse an unsafe start before building anything
    container = container or build_container(settings)
    auth = build_authenticator(settings.host, settings.auth, container.api_keys)
    sessions = SessionWatcher(container.api_keys, interval=settings.auth.session_check_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await container.start()
        watcher = asyncio.create_task(sessions.run(), name="session-watcher")
        auth_log = log.warning if auth.mode == "open" else log.info
        auth_log("auth.mode", **describe(auth.mode, settings.auth, settings.api_keys_url))
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
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await auth.aclose()
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

    graphql = KGGraphQL(
        container,
        auth,
        sessions,
        extensions=[
            rate_limits(container.rate_limits),
            query_limits(_query_limits(settings)),
            *([] if settings.introspection else [DisableIntrospection]),
        ],
        graphql_ide="graphiql" if settings.graphiql else None,
    )
    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    if settings.graphiql:
        routes.extend(graphiql_routes())
    routes.append(WebSocketRoute("/graphql", graphql))
    cors = CorsSettings(
        allowed_origins=tuple(settings.cors.allowed_origins),
        allow_credentials=settings.cors.allow_credentials,
        max_age=settings.cors.max_age,
    )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=cors_middleware(cors))
    app.state.container = container
    app.state.auth = auth
    app.state.sessions = sessions
    if auth.mode == "local":  # admin to any caller: only this machine's, by name too
        app.add_middleware(LoopbackHostsOnly)
    app.add_middleware(RequestIdMiddleware)
    return app
