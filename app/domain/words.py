"""Words as search sees them: one definition for both graph stores and the services.

SQLite's FTS5 tokenizer (``unicode61 remove_diacritics 2``) splits text at anything that
is not a letter or a digit, lowercases it and strips combining marks. Lucene's analysers
differ (Unicode word boundaries keep ``Norway's`` whole, ASCII folding turns ``ł`` into
``l``, the English ones drop stop words), so the Neo4j store indexes ``index_text`` of
each chunk, the words folded here, with a whitespace analyser, and searches the words of
``query_words``: both stores then match the same words for the same query. The answer
service finds entity names in questions with the same words.
"""

from __future__ import annotations

import re
import unicodedata

# At most this many distinct words of a keyword query are searched.
MAX_QUERY_TERMS = 32
_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits


def fold(text: str) -> str:
    """Lowercase, without combining marks ("Svěrák" -> "sverak"; "Łódź" -> "łodz")."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare).lower()


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def index_text(text: str) -> str:
    """The folded words of ``text``, space-separated: what a whitespace analyser indexes."""
    return " ".join(words(text))


def query_words(text: str) -> list[str]:
    """The distinct folded words of a query, in order, at most ``MAX_QUERY_TERMS``."""
    return list(dict.fromkeys(words(text)))[:MAX_QUERY_TERMS]
