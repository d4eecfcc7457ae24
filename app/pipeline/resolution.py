"""Entity resolution within one document: from per-chunk mentions to graph records.

Mentions become entities by a canonical key, ``name|TYPE`` (see ``canonical_name``), so
"Apple Inc." and "apple" are one entity and the same key in another document is the same
entity id. Within a document a short name that is the first or last whole words of
exactly one longer name of the same type joins it as an alias ("Obama" after or before
"Barack Obama"); when two longer names fit ("Bush": "George Bush", "Laura Bush") it
stays on its own, since guessing would merge two people.

Chunks overlap, so the same document span can be extracted twice: the mention in the
earliest chunk is kept. Relations are remapped onto the resolved entities; a relation of
an entity with itself is dropped, duplicates merge with the best confidence, and each
supporting sentence is evidence once. Aliases and mention counts are this document's;
the graph store recomputes them across documents.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.ids import entity_id, relation_id
from app.domain.models import Chunk, Entity, Evidence, Mention, Relation
from app.ports.models import ExtractedMention, ExtractedText

__all__ = ["ResolvedDocument", "canonical_key", "canonical_name", "resolve_document"]

# Stripped from both ends of a name: quotes, brackets, dashes. Sentence punctuation goes
# from the end only (".NET" keeps its dot); "#", "+", "&" and "@" stay ("C#", "C++").
_EDGE = " \"'`´«»“”‘’„‚‹›()[]{}<>*_-–—―|/\\"
_TRAILING = _EDGE + ".,;:!?…"
_CORPORATE_SUFFIXES = frozenset(
    {"inc", "ltd", "corp", "llc", "co", "plc", "corporation", "incorporated", "limited"}
)
_ORG_LABELS = frozenset({"ORG", "ORGANIZATION", "ORGANISATION"})
# Labels whose values are not names: "2020" is no alias of "March 2020".
_NO_ALIAS_LABELS = frozenset(
    {"DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL"}
)


@dataclass(frozen=True, slots=True)
class ResolvedDocument:
    """The graph records one document contributes."""

    entities: tuple[Entity, ...]
    mentions: tuple[Mention, ...]
    relations: tuple[Relation, ...]
    evidence: tuple[Evidence, ...]


def canonical_name(name: str, label: str) -> str:
    """The name part of an entity key: NFKC, casefolded, whitespace collapsed, without
    surrounding punctuation, a possessive "'s", a leading "the " or (for organisations)
    corporate suffixes such as Inc. or Ltd. May be empty ("The", "!!")."""
    s = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    s = " ".join(s.replace("’", "'").split())
    s = s.rstrip(_TRAILING)
    if s.endswith("'s"):
        s = s[:-2]
    s = _strip(s)
    if s == "the" or s.startswith("the "):
        s = _strip(s[4:])
    if label.upper() in _ORG_LABELS:
        tokens = s.split(" ")
        while len(tokens) > 1 and _strip(tokens[-1]) in _CORPORATE_SUFFIXES:
            tokens.pop()
            tokens[-1] = _strip(tokens[-1])
        s = _strip(" ".join(tokens))
    return s


def canonical_key(name: str, label: str) -> str | None:
    """``canonical_name|label``, or None for a name that normalises to nothing."""
    canonical = canonical_name(name, label)
    return f"{canonical}|{label}" if canonical else None


def resolve_document(
    document_id: str, chunks: Sequence[Chunk], extractions: Sequence[ExtractedText]
) -> ResolvedDocument:
    """Entities, mentions, relations and evidence of one document; ``extractions[i]``
    holds the extractor's output for ``chunks[i]`` (offsets into the chunk's text).
    Raises ``ValueError`` when an extraction points outside its chunk."""
    if len(chunks) != len(extractions):
        raise ValueError(f"{len(extractions)} extractions for {len(chunks)} chunks")
    pairs = sorted(zip(chunks, extractions, strict=True), key=lambda p: p[0].index)
    for chunk, extracted in pairs:
        _check(chunk, extracted)
    occurrences, refs = _occurrences(pairs)
    roots = _roots({o.key: o.label for o in occurrences})
    entities = _entities(occurrences, roots)
    mentions = tuple(
        Mention(
            entity_id=entity_id(roots[o.key]),
            document_id=document_id,
            chunk_id=o.chunk_id,
            start=o.start,
            end=o.end,
            text=o.text,
        )
        for o in sorted(occurrences, key=lambda o: (o.start, o.end))
    )
    relations, evidence = _relations(document_id, pairs, refs, occurrences, roots)
    return ResolvedDocument(entities, mentions, relations, evidence)


# --- mentions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Occurrence:
    key: str
    label: str
    text: str
    start: int  # in the document
    end: int
    chunk_id: str


def _check(chunk: Chunk, extracted: ExtractedText) -> None:
    size = len(chunk.text)
    for s in extracted.sentences:
        if not 0 <= s.start <= s.end <= size:
            raise ValueError(f"sentence {s.start}:{s.end} is outside chunk {chunk.id}")
    for m in extracted.mentions:
        if not 0 <= m.start <= m.end <= size:
            raise ValueError(f"mention {m.start}:{m.end} is outside chunk {chunk.id}")
        if not 0 <= m.sentence < len(extracted.sentences):
            raise ValueError(f"mention {m.text!r} names no sentence of chunk {chunk.id}")
    for r in extracted.relations:
        if not (0 <= r.head < len(extracted.mentions) and 0 <= r.tail < len(extracted.mentions)):
            raise ValueError(f"relation {r.type} names no mention of chunk {chunk.id}")


def _occurrences(
    pairs: Sequence[tuple[Chunk, ExtractedText]],
) -> tuple[list[_Occurrence], dict[tuple[int, int], int | None]]:
    """Every distinct document span once (its earliest chunk's), and for each
    (chunk position, mention index) the occurrence it became (None: no usable name)."""
    occurrences: list[_Occurrence] = []
    by_span: dict[tuple[int, int], int | None] = {}
    refs: dict[tuple[int, int], int | None] = {}
    for position, (chunk, extracted) in enumerate(pairs):
        for index, m in enumerate(extracted.mentions):
            span = (chunk.start + m.start, chunk.start + m.end)
            if span not in by_span:
                by_span[span] = _add(occurrences, m, span, chunk.id)
            refs[(position, index)] = by_span[span]
    return occurrences, refs


def _add(
    occurrences: list[_Occurrence], m: ExtractedMention, span: tuple[int, int], chunk: str
) -> int | None:
    key = canonical_key(m.text, m.label)
    if key is None:
        return None
    occurrences.append(_Occurrence(key, m.label, m.text, span[0], span[1], chunk))
    return len(occurrences) - 1


# --- aliases ----------------------------------------------------------------------------


def _roots(labels: dict[str, str]) -> dict[str, str]:
    """For each key, the key of the entity it belongs to: the longest name that it is
    the leading or trailing words of, when exactly one entity fits; else itself."""
    words = {key: tuple(key.rsplit("|", 1)[0].split(" ")) for key in labels}
    longer: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for key, tokens in words.items():
        for n in range(1, len(tokens)):
            longer.setdefault((labels[key], tokens[:n]), []).append(key)
            if tokens[-n:] != tokens[:n]:
                longer.setdefault((labels[key], tokens[-n:]), []).append(key)
    roots: dict[str, str] = {}
    for key in sorted(labels, key=lambda k: (-len(words[k]), k)):
        fits = longer.get((labels[key], words[key]), [])
        found = {roots[k] for k in fits}
        alias = len(found) == 1 and labels[key].upper() not in _NO_ALIAS_LABELS
        roots[key] = found.pop() if alias else key
    return roots


def _entities(occurrences: Sequence[_Occurrence], roots: dict[str, str]) -> tuple[Entity, ...]:
    members: dict[str, list[_Occurrence]] = {}
    for o in sorted(occurrences, key=lambda o: (o.start, o.end)):
        members.setdefault(roots[o.key], []).append(o)
    entities = []
    for root, found in members.items():
        shown = [_display(o.text) for o in found]
        full = [name for o, name in zip(found, shown, strict=True) if o.key == root]
        name = _best_name(full)
        aliases = tuple(dict.fromkeys(s for s in shown if s != name))
        entities.append(
            Entity(
                id=entity_id(root),
                key=root,
                name=name,
                type=found[0].label,
                aliases=aliases,
                mention_count=len(found),
            )
        )
    return tuple(entities)


def _best_name(names: Sequence[str]) -> str:
    """The longest form; among equals the most frequent, then the first seen."""
    counts = Counter(names)
    first = {name: i for i, name in reversed(list(enumerate(names)))}
    return max(counts, key=lambda n: (len(n), counts[n], -first[n]))


def _display(surface: str) -> str:
    s = " ".join(unicodedata.normalize("NFC", surface).split())
    for possessive in ("'s", "’s"):
        if s.endswith(possessive) and len(s) > len(possessive):
            s = s[: -len(possessive)]
    return s.strip(_EDGE) or s


def _strip(s: str) -> str:
    return s.lstrip(_EDGE).rstrip(_TRAILING)


# --- relations --------------------------------------------------------------------------


def _relations(
    document_id: str,
    pairs: Sequence[tuple[Chunk, ExtractedText]],
    refs: dict[tuple[int, int], int | None],
    occurrences: Sequence[_Occurrence],
    roots: dict[str, str],
) -> tuple[tuple[Relation, ...], tuple[Evidence, ...]]:
    def entity_of(position: int, mention: int) -> str | None:
        ref = refs[(position, mention)]
        return None if ref is None else entity_id(roots[occurrences[ref].key])

    relations: dict[str, Relation] = {}
    evidence: list[Evidence] = []
    seen: dict[tuple[str, int, int] | tuple[str, str, str], int] = {}
    for position, (chunk, extracted) in enumerate(pairs):
        for r in extracted.relations:
            source, target = entity_of(position, r.head), entity_of(position, r.tail)
            if source is None or target is None or source == target:
                continue
            rid = relation_id(source, r.type, target)
            old = relations.get(rid)
            if old is None or r.confidence > old.confidence:
                relations[rid] = Relation(rid, r.type, source, target, r.confidence)
            sentence = extracted.sentences[extracted.mentions[r.head].sentence]
            text = chunk.text[sentence.start : sentence.end]
            by_span = (rid, chunk.start + sentence.start, chunk.start + sentence.end)
            by_text = (rid, chunk.id, text)
            at = seen.get(by_span, seen.get(by_text))
            if at is None:
                at = len(evidence)
                evidence.append(Evidence(rid, document_id, chunk.id, text, r.confidence))
            elif r.confidence > evidence[at].confidence:
                e = evidence[at]
                evidence[at] = Evidence(rid, document_id, e.chunk_id, e.text, r.confidence)
            seen.setdefault(by_span, at)
            seen.setdefault(by_text, at)
    return tuple(relations.values()), tuple(evidence)
