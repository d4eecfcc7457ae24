"""A tiny server for the GraphiQL browser test: one field, the offline page, the assets.

Run by the test as ``uvicorn tests.e2e.graphiql_app:app`` in its own process, so the
browser talks to a real HTTP server exactly as it would to ours.
"""

from __future__ import annotations

import strawberry
import strawberry.asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute

from app.graphiql_page import graphiql_routes, offline_graphiql_html


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str | None:
        return "world"


class OfflineGraphQL(strawberry.asgi.GraphQL):
    """Strawberry's view, answering browsers with the CDN-free GraphiQL page."""

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(offline_graphiql_html())


graphql_app = OfflineGraphQL(strawberry.Schema(query=Query))

app = Starlette(
    routes=[
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),
        *graphiql_routes(),
    ]
)
