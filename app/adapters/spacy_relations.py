"""Relations between the entity mentions of one parsed sentence, from dependency patterns.

Pure functions over a spaCy parse (tagger, parser and lemmatizer have run) and the entity
spans laid on it. Why patterns and not a model: they are cheap, explainable and need no
training data; what they miss still surfaces as a low-confidence ``RELATED_TO``.

Patterns, each directed head -> tail:

- subject-verb-object: ``X founded Y`` -> FOUND(X, Y); passive ``Y was acquired by X``
  -> ACQUIRE(X, Y) (0.8);
- verb + preposition: ``X was born in Y`` -> BORN_IN(X, Y), ``X worked for Y`` (0.7);
- describing noun + preposition, through an appositive (``X, the CEO of Y``), a copula
  (``X is the capital of Y``, ``X was married to Y``) or ``as`` (``X served as CEO of Y``)
  -> CEO_OF, CAPITAL_OF, MARRIED_TO (0.7);
- possessive or compound noun: ``Y's CEO X``, ``Y CEO X``, ``X is Y's CEO`` -> CEO_OF (0.6);
- any other pair of one sentence -> RELATED_TO (0.3), see ``cooccurrence``.

An entity takes part through any of its tokens and through its conjuncts, so
``X and Y founded Z`` yields FOUND for both. Negated verbs yield nothing.

Only the tagger and the parser are required: the coarse part of speech falls back to one
read off the fine tag, and lemmas come from a ``lemma`` function (the token's own lemma
by default), so the costly attribute ruler and lemmatizer need not run on every token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from spacy.tokens import Doc, Span, Token

SVO_CONFIDENCE = 0.8
PREP_CONFIDENCE = 0.7
NOUN_CONFIDENCE = 0.7
POSSESSIVE_CONFIDENCE = 0.6
RELATED_CONFIDENCE = 0.3
RELATED_TO = "RELATED_TO"
MAX_TYPE_LENGTH = 40

_COPULAS = frozenset({"be", "become", "remain"})
_SUBJECTS = frozenset({"nsubj", "nsubjpass"})
_VERBS = frozenset({"VERB", "AUX"})
_NOUNS = frozenset({"NOUN", "PROPN"})
_RELATIVE_TAGS = frozenset({"WDT", "WP", "WP$"})
_NOT_TYPE = re.compile(r"[^A-Z0-9]+")
_TAG_POS = {"MD": "AUX", "NN": "NOUN", "NNS": "NOUN", "NNP": "PROPN", "NNPS": "PROPN"}

Lemmatize = Callable[[Token], str]


def token_lemma(token: Token) -> str:
    """The lemma a full pipeline set, else the lower-cased text."""
    return token.lemma_ or token.lower_


def coarse_pos(token: Token) -> str:
    """The universal part of speech, read off the fine tag when no attribute ruler ran."""
    if token.pos_:
        return token.pos_
    tag = token.tag_
    if tag.startswith("VB"):
        return "VERB"
    if tag.startswith("JJ"):
        return "ADJ"
    return _TAG_POS.get(tag, "")


@dataclass(frozen=True, slots=True)
class FoundRelation:
    """A relation between two entities, as indexes into the list it was found in."""

    head: int
    tail: int
    type: str
    confidence: float


def relation_type(*parts: str) -> str | None:
    """``A-Z0-9_`` only, at most 40 characters; None when nothing of it is left."""
    raw = "_".join(_NOT_TYPE.sub("_", part.upper()).strip("_") for part in parts)
    cleaned = _NOT_TYPE.sub("_", raw).strip("_")[:MAX_TYPE_LENGTH].rstrip("_")
    return cleaned or None


def find_relations(
    sentence: Doc | Span, entities: Sequence[Span], lemma: Lemmatize = token_lemma
) -> list[FoundRelation]:
    """Pattern relations between ``entities`` (spans of the parsed ``sentence``)."""
    finder = _Finder(entities, lemma)
    for token in sentence:
        if coarse_pos(token) in _VERBS:
            finder.verb(token)
    for index, entity in enumerate(entities):
        finder.entity_nouns(index, entity)
    return finder.found()


def cooccurrence(
    keys: Sequence[Hashable],
    linked: Iterable[tuple[Hashable, Hashable]] = (),
    *,
    max_keys: int | None = None,
) -> list[FoundRelation]:
    """One RELATED_TO per unordered pair of distinct keys that no pattern already links.

    ``keys`` identify the mentions of one sentence in text order (text and label), so
    the head is the earlier mention. ``max_keys`` bounds the quadratic blow-up of list-like
    sentences: beyond that many distinct keys, no co-occurrence relation is made.
    """
    first: dict[Hashable, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    if max_keys is not None and len(first) > max_keys:
        return []
    done = {frozenset(pair) for pair in linked}
    ordered = list(first.items())
    out: list[FoundRelation] = []
    for i, (key_a, index_a) in enumerate(ordered):
        for key_b, index_b in ordered[i + 1 :]:
            pair = frozenset((key_a, key_b))
            if pair in done:
                continue
            done.add(pair)
            out.append(FoundRelation(index_a, index_b, RELATED_TO, RELATED_CONFIDENCE))
    return out


class _Finder:
    """Collects relations, refusing self-relations and keeping the best of duplicates."""

    def __init__(self, entities: Sequence[Span], lemma: Lemmatize) -> None:
        self._lemma = lemma
        self._keys = [(e.text, e.label_) for e in entities]
        self._owner: dict[int, int] = {}
        for index, entity in enumerate(entities):
            for token in entity:
                self._owner.setdefault(token.i, index)
        self._best: dict[tuple[int, int, str], float] = {}

    def found(self) -> list[FoundRelation]:
        return [FoundRelation(h, t, ty, c) for (h, t, ty), c in self._best.items()]

    def add(
        self, heads: Iterable[int], tails: Iterable[int], rtype: str | None, conf: float
    ) -> None:
        if rtype is None:
            return
        tail_list = list(tails)
        for head in heads:
            for tail in tail_list:
                if head == tail or self._keys[head] == self._keys[tail]:
                    continue
                key = (head, tail, rtype)
                self._best[key] = max(conf, self._best.get(key, 0.0))

    def owned(self, token: Token) -> bool:
        return token.i in self._owner

    def entities_of(self, token: Token) -> list[int]:
        """The entities at ``token``, its conjuncts and its appositive entities."""
        found: list[int] = []
        for each in (token, *token.conjuncts):
            candidates = [each, *(c for c in each.children if c.dep_ == "appos")]
            for candidate in candidates:
                index = self._owner.get(candidate.i)
                if index is not None and index not in found:
                    found.append(index)
        return found

    def verb(self, verb: Token) -> None:
        if any(child.dep_ == "neg" for child in verb.children):
            return
        subjects, passive = _subjects(verb)
        heads = [i for s in subjects for i in self.entities_of(s)]
        copula = self._lemma(verb) in _COPULAS
        if not heads:
            if copula:  # "Y's capital is X": the subject noun describes the attribute
                self._described_subject(verb, subjects)
            return
        name = self._verb_name(verb)
        for child in verb.children:
            if child.dep_ == "dobj" and not passive and not copula:
                self.add(heads, self.entities_of(child), relation_type(name), SVO_CONFIDENCE)
            elif child.dep_ == "agent" and passive:
                for obj in _objects_of(child):
                    self.add(self.entities_of(obj), heads, relation_type(name), SVO_CONFIDENCE)
            elif child.dep_ == "prep":
                self._prep(heads, name, child)
            elif copula and child.dep_ in ("attr", "acomp"):
                self.noun(heads, child)

    def _verb_name(self, verb: Token) -> str:
        """The lemma, with its particle (``set up``); ``born`` stays ``born``, not ``bear``."""
        base = "born" if verb.lower_ == "born" else self._lemma(verb)
        particles = [c.lower_ for c in verb.children if c.dep_ == "prt"]
        return "_".join([base, *particles])

    def _described_subject(self, verb: Token, subjects: list[Token]) -> None:
        for attr in verb.children:
            if attr.dep_ == "attr":
                for subject in subjects:
                    self.noun(self.entities_of(attr), subject)

    def _prep(self, heads: list[int], name: str, prep: Token) -> None:
        for obj in _objects_of(prep):
            tails = self.entities_of(obj)
            if tails:
                rtype = relation_type(name, prep.lower_)
                self.add(heads, tails, rtype, PREP_CONFIDENCE)
            elif prep.lower_ == "as":  # "X served as CEO of Y"
                self.noun(heads, obj)

    def entity_nouns(self, index: int, entity: Span) -> None:
        """Nouns describing an entity: ``X, the CEO of``, ``the CEO, X``, ``CEO X``."""
        root = entity.root
        for child in root.children:
            if child.dep_ in ("appos", "compound") and not self.owned(child):
                self.noun([index], child)
        if root.dep_ == "appos" and not self.owned(root.head):
            self.noun([index], root.head)

    def noun(self, heads: list[int], noun: Token) -> None:
        """Relations from a describing noun to the entities it is "of"."""
        pos = coarse_pos(noun)
        if self.owned(noun) or pos not in (*_NOUNS, "ADJ"):
            return
        for child in noun.children:
            if child.dep_ == "prep":
                for obj in _objects_of(child):
                    rtype = relation_type(self._lemma(noun), child.lower_)
                    self.add(heads, self.entities_of(obj), rtype, NOUN_CONFIDENCE)
            elif child.dep_ in ("poss", "compound") and pos in _NOUNS:
                rtype = relation_type(self._lemma(noun), "of")
                self.add(heads, self.entities_of(child), rtype, POSSESSIVE_CONFIDENCE)


def _objects_of(prep: Token) -> list[Token]:
    return [c for c in prep.children if c.dep_ == "pobj"]


def _subjects(verb: Token) -> tuple[list[Token], bool]:
    """The subjects of a verb and whether it is passive.

    Conjoined and open-complement verbs share their head's subject ("X founded Y and
    acquired Z", "X agreed to buy Z"); a participle modifier's subject is the noun it
    modifies ("X, born in Y"); a relative pronoun stands for the noun it refers to.
    """
    current = verb
    for _ in range(32):  # bounded walk up a chain of conjuncts
        own = [c for c in current.children if c.dep_ in _SUBJECTS]
        if own:
            passive = _is_passive(verb) if current is not verb else own[0].dep_ == "nsubjpass"
            subjects = [
                current.head if s.tag_ in _RELATIVE_TAGS and current.dep_ == "relcl" else s
                for s in own
            ]
            return subjects, passive
        if current.dep_ == "acl":
            return [current.head], current.tag_ == "VBN"
        if current.dep_ in ("conj", "xcomp") and coarse_pos(current.head) in _VERBS:
            current = current.head
            continue
        break
    return [], False


def _is_passive(verb: Token) -> bool:
    """A verb borrowing its subject is passive if it says so or is a bare participle."""
    if any(c.dep_ == "auxpass" for c in verb.children):
        return True
    return verb.dep_ == "conj" and verb.tag_ == "VBN" and _subjects(verb.head)[1]
