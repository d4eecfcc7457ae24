"""The typed context every resolver receives: services, DataLoaders, the request id."""

from __future__ import annotations

from dataclasses import dataclass, field

from strawberry.types import Info as StrawberryInfo

from app.domain.models import PageRequest
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


@dataclass(slots=True)
class Context:
    services: Services
    request_id: str
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
