"""Realistic document bundles for the graph store contract suite.

Three documents about early computing. Ada Lovelace's and Charles Babbage's articles
share entities (Babbage, the Analytical Engine, London) and a relation (Babbage DESIGNED
the Analytical Engine, with evidence in both); the Manchester article shares nothing and
holds a self-loop. Offsets are computed from the text, as the pipeline would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.domain import ids
from app.domain.models import (
    Chunk,
    Document,
    DocumentBundle,
    Entity,
    Evidence,
    Mention,
    Relation,
)


@dataclass(frozen=True)
class Spec:
    """An entity of the catalogue; its id derives from its key, as in the pipeline."""

    name: str
    type: str

    @property
    def key(self) -> str:
        return f"{self.type}:{self.name.casefold()}"

    @property
    def id(self) -> str:
        return ids.entity_id(self.key)

    def entity(self) -> Entity:
        return Entity(id=self.id, key=self.key, name=self.name, type=self.type)


ADA = Spec("Ada Lovelace", "PERSON")
BABBAGE = Spec("Charles Babbage", "PERSON")
ENGINE = Spec("Analytical Engine", "PRODUCT")
DIFFERENCE = Spec("Difference Engine", "PRODUCT")
LONDON = Spec("London", "GPE")
TURING = Spec("Alan Turing", "PERSON")
MANCHESTER = Spec("University of Manchester", "ORG")


def relation_id(source: Spec, rel_type: str, target: Spec) -> str:
    return ids.relation_id(source.id, rel_type, target.id)


@dataclass
class BundleBuilder:
    """Builds one document chunk by chunk; mentions and evidence point into the text."""

    title: str
    ingested_at: datetime
    source: str | None = None
    published_at: datetime | None = None
    metadata: dict[str, object] | None = None
    _chunks: list[str] = field(default_factory=list)
    _mentions: list[tuple[int, str, Spec, int]] = field(default_factory=list)
    _relations: list[tuple[Spec, str, Spec, int, str, float]] = field(default_factory=list)

    def chunk(self, text: str) -> int:
        self._chunks.append(text)
        return len(self._chunks) - 1

    def mention(self, chunk: int, surface: str, spec: Spec, occurrence: int = 0) -> None:
        self._mentions.append((chunk, surface, spec, occurrence))

    def relation(
        self, source: Spec, rel_type: str, target: Spec, chunk: int, sentence: str, conf: float
    ) -> None:
        assert sentence in self._chunks[chunk], sentence
        self._relations.append((source, rel_type, target, chunk, sentence, conf))

    @property
    def text(self) -> str:
        return "\n\n".join(self._chunks)

    @property
    def document_id(self) -> str:
        return ids.document_id(self.title, self.text)

    def build(self) -> DocumentBundle:
        doc_id = self.document_id
        chunks: list[Chunk] = []
        offset = 0
        for index, text in enumerate(self._chunks):
            chunks.append(
                Chunk(
                    id=ids.chunk_id(doc_id, index),
                    document_id=doc_id,
                    index=index,
                    text=text,
                    start=offset,
                    end=offset + len(text),
                    token_count=len(text.split()),
                )
            )
            offset += len(text) + 2
        mentions = []
        entities: dict[str, Entity] = {}
        for index, surface, spec, occurrence in self._mentions:
            chunk = chunks[index]
            at = -1
            for _ in range(occurrence + 1):
                at = chunk.text.index(surface, at + 1)
            mentions.append(
                Mention(
                    entity_id=spec.id,
                    document_id=doc_id,
                    chunk_id=chunk.id,
                    start=chunk.start + at,
                    end=chunk.start + at + len(surface),
                    text=surface,
                )
            )
            entities.setdefault(spec.id, spec.entity())
        relations: dict[str, Relation] = {}
        evidence = []
        for source, rel_type, target, index, sentence, conf in self._relations:
            rid = relation_id(source, rel_type, target)
            relations.setdefault(
                rid,
                Relation(
                    id=rid, type=rel_type, source_id=source.id, target_id=target.id, confidence=0.0
                ),
            )
            evidence.append(
                Evidence(
                    relation_id=rid,
                    document_id=doc_id,
                    chunk_id=chunks[index].id,
                    text=sentence,
                    confidence=conf,
                )
            )
        document = Document(
            id=doc_id,
            title=self.title,
            text=self.text,
            source=self.source,
            published_at=self.published_at,
            ingested_at=self.ingested_at,
            metadata=self.metadata,
            chunk_count=len(chunks),
        )
        return DocumentBundle(
            document=document,
            chunks=tuple(chunks),
            entities=tuple(entities.values()),
            mentions=tuple(mentions),
            relations=tuple(relations.values()),
            evidence=tuple(evidence),
        )


def lovelace_bundle() -> DocumentBundle:
    """Ada Lovelace and Babbage: four entities, three relations, two chunks."""
    b = BundleBuilder(
        title="Ada Lovelace and the Analytical Engine",
        ingested_at=datetime(2024, 1, 10, 9, 30, tzinfo=UTC),
        source="encyclopedia",
        published_at=datetime(2023, 12, 10, tzinfo=UTC),
        metadata={"lang": "en", "tags": ["history", "computing"], "rating": 4.5},
    )
    c0 = b.chunk(
        "Ada Lovelace worked with Charles Babbage on the Analytical Engine in London. "
        "Babbage designed the Analytical Engine as a general-purpose computer."
    )
    c1 = b.chunk(
        "Lovelace wrote the first published algorithm for the machine. "
        "Mr Babbage admired her notes, which Lovelace signed with her initials."
    )
    b.mention(c0, "Ada Lovelace", ADA)
    b.mention(c0, "Charles Babbage", BABBAGE)
    b.mention(c0, "Analytical Engine", ENGINE)
    b.mention(c0, "London", LONDON)
    b.mention(c0, "Babbage", BABBAGE, occurrence=1)
    b.mention(c0, "Analytical Engine", ENGINE, occurrence=1)
    b.mention(c1, "Lovelace", ADA)
    b.mention(c1, "Mr Babbage", BABBAGE)
    b.mention(c1, "Lovelace", ADA, occurrence=1)
    b.relation(
        ADA,
        "WORKED_WITH",
        BABBAGE,
        c0,
        "Ada Lovelace worked with Charles Babbage on the Analytical Engine in London.",
        0.9,
    )
    b.relation(
        BABBAGE,
        "DESIGNED",
        ENGINE,
        c0,
        "Babbage designed the Analytical Engine as a general-purpose computer.",
        0.97,
    )
    b.relation(
        ADA,
        "LOCATED_IN",
        LONDON,
        c0,
        "Ada Lovelace worked with Charles Babbage on the Analytical Engine in London.",
        0.55,
    )
    return b.build()


def babbage_bundle() -> DocumentBundle:
    """Babbage's own article: shares Babbage, the Analytical Engine, London and DESIGNED."""
    b = BundleBuilder(
        title="Charles Babbage",
        ingested_at=datetime(2024, 2, 5, 14, 0, tzinfo=UTC),
        source="encyclopedia",
    )
    c0 = b.chunk(
        "Charles Babbage designed the Difference Engine and later the Analytical Engine. "
        "The engine used punched cards borrowed from the Jacquard loom."
    )
    c1 = b.chunk("Babbage was born in London in 1791 and died there in 1871.")
    b.chunk("His engines were never completed in his lifetime.")  # a chunk without mentions
    b.mention(c0, "Charles Babbage", BABBAGE)
    b.mention(c0, "Difference Engine", DIFFERENCE)
    b.mention(c0, "Analytical Engine", ENGINE)
    b.mention(c1, "Babbage", BABBAGE)
    b.mention(c1, "London", LONDON)
    sentence = "Charles Babbage designed the Difference Engine and later the Analytical Engine."
    b.relation(BABBAGE, "DESIGNED", ENGINE, c0, sentence, 0.8)
    b.relation(BABBAGE, "DESIGNED", DIFFERENCE, c0, sentence, 0.85)
    b.relation(
        BABBAGE,
        "BORN_IN",
        LONDON,
        c1,
        "Babbage was born in London in 1791 and died there in 1871.",
        0.75,
    )
    return b.build()


def turing_bundle() -> DocumentBundle:
    """Turing at Manchester: shares nothing with the others; holds a self-loop."""
    b = BundleBuilder(
        title="Computing in Manchester",
        ingested_at=datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
        source="blog",
    )
    c0 = b.chunk(
        "Alan Turing worked at the University of Manchester after the war. "
        "Alan Turing cited Alan Turing in his later papers."
    )
    b.mention(c0, "Alan Turing", TURING)
    b.mention(c0, "University of Manchester", MANCHESTER)
    b.mention(c0, "Alan Turing", TURING, occurrence=1)
    b.mention(c0, "Alan Turing", TURING, occurrence=2)
    b.relation(
        TURING,
        "WORKED_AT",
        MANCHESTER,
        c0,
        "Alan Turing worked at the University of Manchester after the war.",
        0.6,
    )
    b.relation(
        TURING, "CITED", TURING, c0, "Alan Turing cited Alan Turing in his later papers.", 0.4
    )
    return b.build()


def all_bundles() -> list[DocumentBundle]:
    return [lovelace_bundle(), babbage_bundle(), turing_bundle()]
