"""The limits every GraphQL document must stay within, as one frozen value.

Settings map onto it (``KG_LIMITS__*``); the defaults admit GraphiQL's introspection
query and the queries of the README, and refuse what only an attacker writes. The
page-size caps mirror the resolvers' own checks: an argument above its cap is refused by
the resolver with BAD_USER_INPUT, so the cost analysis counts it at the cap and leaves
that clearer error to the resolver.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from app.domain.errors import ConfigurationError

SIZE_ARGUMENTS = ("first", "k", "limit")
"""Arguments that bound how many items a field returns (connections, search, walks)."""


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_document_bytes: int = 65_536
    """Size of the document text in UTF-8 bytes, checked before anything reads it."""
    max_tokens: int = 5_000
    """Lexical tokens, comments included, counted before parsing."""
    max_depth: int = 15
    """Fields nested in one another (a root field is at depth 1; GraphiQL's
    introspection query reaches 15)."""
    max_aliases: int = 30
    """Aliased fields, with every fragment counted at each place it is spread."""
    max_fields: int = 2_000
    """Field selections, with fragments expanded where they are spread."""
    max_cost: int = 10_000
    """Objects the operation may resolve: each object-typed field counts 1, multiplied
    by the page size of every list above it."""
    max_page_size: int = 100
    """Cap of ``first`` (the resolvers' KG_LIMITS__MAX_PAGE_SIZE)."""
    max_search_k: int = 100
    """Cap of ``k`` on search and ask (KG_LIMITS__MAX_SEARCH_K)."""
    max_neighborhood: int = 500
    """Cap of ``limit`` on neighborhood (KG_LIMITS__MAX_NEIGHBORHOOD)."""
    default_list_size: int = 10
    """Items assumed for a list that takes no size argument (a chunk's entities, a
    relation's evidence...)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"query limit {f.name} must be a whole number >= 1")

    def size_cap(self, argument: str) -> int:
        """The most items a size argument (``first``, ``k``, ``limit``) can ask for."""
        match argument:
            case "first":
                return self.max_page_size
            case "k":
                return self.max_search_k
            case _:
                return self.max_neighborhood
