"""The typed context every resolver receives: services, DataLoaders, the request id, and
who is asking (``principal``, from ``client``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response
from strawberry.types import Info as StrawberryInfo

from app.domain.auth import Principal
from app.domain.errors import KGError
from app.domain.models import PageRequest
from app.security.api_keys import ApiKeys
from app.security.sessions import Session
from app.services.answers import AnswerService
from app.services.catalog import CatalogService
from app.services.ingestion import IngestionService
from app.services.search import SearchService
from graphql_schema.loaders import Loaders
from graphql_schema.relay import decode_cursor


@dataclass(frozen=True, slots=True)
class Services:
    """What the composition root hands the API."""

    catalog: CatalogService
    search: SearchService
    ingestion: IngestionService
    answers: AnswerService
    api_keys: ApiKeys


@dataclass(slots=True)
class Context:
    """One per HTTP request, or one per WebSocket connection.

    ``principal`` is who the caller is; when it presented no valid credential it is
    ``ANONYMOUS`` (no roles) and ``auth_failure`` says why, which the permission classes
    raise (UNAUTHENTICATED, or UNAVAILABLE when the identity provider is down). ``client``
    is the caller's address. On a WebSocket, ``connection_params`` is the
    ``connection_init`` payload and ``session`` what closes the socket when the
    credential ends."""

    services: Services
    request_id: str
    principal: Principal
    client: str = "in-process"
    auth_failure: KGError | None = None
    session: Session | None = None
    connection_params: dict[str, object] | None = None
    response: Response | None = None  # HTTP only: where 429 and Retry-After are set
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services.catalog, self.services.ingestion)

    def page(self, first: int | None, after: str | None) -> PageRequest:
        """The page a connection's ``first``/``after`` ask for (``first`` null: 20)."""
        return self.services.catalog.page(
            DEFAULT_PAGE_SIZE if first is None else first, decode_cursor(after)
        )


DEFAULT_PAGE_SIZE = 20

Info = StrawberryInfo[Context, None]
