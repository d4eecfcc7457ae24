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
# Words that carry nothing a passage could be found or judged by. A keyword query
# leaves them out (unless it holds nothing else): "the" is in most chunks, and matching
# it would make the store score and sort nearly all of them (measured: a median
# question matched 74 % of 100k chunks, 130 ms, before they were left out).
FUNCTION_WORDS = frozenset(
    """
    a an and are as at be been being but by can could did do does doing for from had has
    have he her hers him his how i if in into is it its me my no nor not of on or our
    she so than that the their them then there these they this those to too us was we were
    what when where which while who whom whose why will with would you your also about
    s t
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
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
    """The distinct folded words of a query, in order, at most ``MAX_QUERY_TERMS``,
    without function words unless the query holds nothing else ("the who" stays)."""
    distinct = list(dict.fromkeys(words(text)))
    content = [w for w in distinct if w not in FUNCTION_WORDS]
    return (content or distinct)[:MAX_QUERY_TERMS]
