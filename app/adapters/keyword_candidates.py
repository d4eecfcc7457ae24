"""Which chunks a SQLite keyword search scores: a bounded candidate set.

Why: FTS5 computes bm25 for every row its MATCH yields, about a microsecond each, while
walking the index costs a twentieth of that. A question's words together can be in
tens of thousands of chunks ("film", "american", "born" are each in thousands of 100k),
and scoring all of them is most of a search's time.

The pruning is the "continue" strategy of Moffat and Zobel ("Self-indexing inverted
files for fast text retrieval", ACM TOIS 14(4), 1996): words are taken rarest first,
and the chunks holding the words taken, up to ``budget`` postings in all, are the
candidates; the commoner words only add to the scores of candidates, they bring in no
chunk of their own. A candidate's score is the whole query's bm25 (every word counts,
with the whole table's statistics), so scores never change, only which chunks compete.
What can be missed is a chunk that holds none of the rarer words and enough of the
common ones to outrank the candidates. When the candidates are fewer than the ``k``
asked for, the store searches again unpruned. What it costs and saves at 100k chunks
(the same top 10 as unpruned for most questions, the tail latency more than halved) is
in tests/benchmarks/RESULTS.md ("Keyword search: the candidate budget").
"""

from __future__ import annotations

from collections.abc import Iterable

# Postings (chunk, word pairs) the candidate words may hold in all. The rarest word is
# always taken, however common it is.
KEYWORD_CANDIDATE_POSTINGS = 2_000


def candidate_words(chunks_per_word: Iterable[tuple[str, int]], budget: int) -> list[str] | None:
    """The words whose chunks are the candidates (rarest first, ties by word), given how
    many chunks hold each word; ``None`` when that would be every word some chunk holds
    (they are within ``budget`` postings together, or there is only one), so every match
    is scored."""
    ranked = sorted((count, word) for word, count in chunks_per_word if count > 0)
    chosen: list[str] = []
    total = 0
    for count, word in ranked:
        if chosen and total + count > budget:
            break
        chosen.append(word)
        total += count
    return chosen if len(chosen) < len(ranked) else None
