"""Checks on the document text, before the parser sees it.

The parser is recursive and allocates a node per token, so a hostile text is refused
here by one pass of graphql-core's lexer, which stops at the first limit it crosses:
the size in bytes, the token count (comments included, as graphql-core's ``max_tokens``
counts them), and how deeply selection sets nest (deeper than the depth limit can only
be refused later, so it is refused now, before the parser recurses into it).
A text the lexer cannot read is left to the parser, which reports the syntax error.

Texts that pass are remembered (up to ``PASSED_TEXTS``, each of at most
``PASSED_TEXT_CHARS`` characters): clients send the same few documents again and again, as the
parser and validation caches also count on, and lexing one costs tens of microseconds
per request. A refusal is never remembered, so it is raised anew each time.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLError, Source, TokenKind
from graphql.language import Lexer

from app.domain.errors import BadInputError, QueryTooComplexError
from graphql_schema.limits.budget import QueryLimits

_OPEN_VALUE = (TokenKind.PAREN_L, TokenKind.BRACKET_L)
_CLOSE_VALUE = (TokenKind.PAREN_R, TokenKind.BRACKET_R)


PASSED_TEXTS = 1024
PASSED_TEXT_CHARS = 4_096  # at most 16 KB of UTF-8 each


def check_document_text(text: str, limits: QueryLimits) -> None:
    """Raise BadInputError (size, tokens) or QueryTooComplexError (nesting)."""
    if len(text) <= PASSED_TEXT_CHARS:
        _passes(text, limits)
    else:
        _check(text, limits)


@lru_cache(maxsize=PASSED_TEXTS)
def _passes(text: str, limits: QueryLimits) -> bool:
    """``_check``, remembered when it passes (lru_cache does not keep exceptions)."""
    _check(text, limits)
    return True


def _check(text: str, limits: QueryLimits) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_document_bytes:
        raise BadInputError(
            f"the document is {size} bytes, over the limit of {limits.max_document_bytes}",
            limit="max_document_bytes",
        )
    lexer = Lexer(Source(text))
    token = lexer.token
    tokens = 0
    in_values = 0  # inside (...) or [...]: braces there are input objects, not selections
    selections = 0
    try:
        while True:
            token = lexer.read_next_token(token.end)
            kind = token.kind
            if kind is TokenKind.EOF:
                return
            tokens += 1
            if tokens > limits.max_tokens:
                raise BadInputError(
                    f"the document has more than {limits.max_tokens} tokens",
                    limit="max_tokens",
                )
            if kind in _OPEN_VALUE:
                in_values += 1
            elif kind in _CLOSE_VALUE:
                in_values = max(in_values - 1, 0)
            elif in_values == 0 and kind is TokenKind.BRACE_L:
                selections += 1
                if selections > limits.max_depth:
                    raise QueryTooComplexError(
                        f"selection sets nest deeper than the depth limit of {limits.max_depth}",
                        limit="max_depth",
                    )
            elif in_values == 0 and kind is TokenKind.BRACE_R:
                selections = max(selections - 1, 0)
    except GraphQLError:
        return  # not lexable: the parser will say where and why
