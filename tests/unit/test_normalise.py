"""Normalisation: the rules, their agreement with the offset map, and their speed."""

from __future__ import annotations

import random
import sys
import unicodedata

import pytest

from app.pipeline.normalise import normalise, normalise_title, normalise_with_map

# Characters that exercise every rule: controls, every kind of break, combining marks,
# Hangul jamo and an Oriya vowel sign (both compose across clusters), emoji with ZWJ.
_TRICKY = [
    *"ab é.",
    "\u0301",
    "\u0327",
    *"\t\n\r\x0b\x0c\x00\x1b\x1c\x1f\x7f\x85\x9f\xa0",
    "\u2000",
    "\u2001",
    "\u2028",
    "\u2029",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u00ad",
    "\u1100",
    "\u1161",
    "\u11a8",
    "\u0b47",
    "\u0b3e",
    "\u212b",
    "👩",
    "\r\n",
]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_TRICKY) for _ in range(rng.randint(0, 30))) for _ in range(count)]


def _realistic_megabyte() -> str:
    rng = random.Random(7)
    sentence = "The naïve café owner in São Paulo met Dr. Müller at 9 a.m. to discuss €5,000. "
    paragraphs = []
    size = 0
    while size < 1_000_000:
        lines = [sentence * rng.randint(1, 2) for _ in range(rng.randint(2, 6))]
        para = "\n".join(lines) + ("\tindented  twice\xa0here" if rng.random() < 0.2 else "")
        paragraphs.append(para)
        size += len(para) + 2
    return "\r\n\r\n".join(paragraphs)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        (" \t\n\r\n ", ""),
        ("plain text", "plain text"),
        ("  both ends  ", "both ends"),
        ("e\u0301clair", "éclair"),  # NFC composes
        ("\u212bngstr\u00f6m", "Ångström"),  # singleton decomposition to the letter
        ("a\x00b\x1b[0mc\x7fd", "ab[0mcd"),  # controls vanish
        ("\ufeffBOM and zero\u200bwidth soft\u00adhyphen", "BOM and zerowidth softhyphen"),
        ("family 👩\u200d👩\u200d👧", "family 👩\u200d👩\u200d👧"),  # ZWJ stays
        ("a \t\xa0\u3000 b", "a b"),
        ("wrapped\nline", "wrapped line"),
        ("windows\r\nline", "windows line"),
        ("old mac\rline", "old mac line"),
        ("para one\n\npara two", "para one\n\npara two"),
        ("para one\n  \t\n\n\npara two", "para one\n\npara two"),
        ("para one\r\n\r\npara two", "para one\n\npara two"),
        ("para one\r\rpara two", "para one\n\npara two"),
        ("page one\x0cpage two", "page one\n\npage two"),
        ("para one\u2029para two", "para one\n\npara two"),
        ("line\u2028sep", "line sep"),
        ("\n\nleading and trailing breaks\n\n", "leading and trailing breaks"),
        ("a\x00\n\x00\nb", "a\n\nb"),  # controls do not hide a paragraph break
    ],
)
def test_normalise_rules(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_every_unicode_whitespace_folds() -> None:
    spaces = [chr(cp) for cp in range(sys.maxunicode + 1) if chr(cp).isspace()]
    assert len(spaces) > 20
    for ch in spaces:
        assert normalise(f"a{ch}b") in ("a b", "a\n\nb"), repr(ch)
        assert normalise(f"a{ch}{ch}b") in ("a b", "a\n\nb"), repr(ch)
    assert normalise("a\u2029b") == "a\n\nb"
    assert normalise("a\x85\x85b") == "a\n\nb"


def test_output_is_a_fixed_point_and_clean() -> None:
    for text in _random_texts(3000, seed=1):
        once = normalise(text)
        assert normalise(once) == once
        assert unicodedata.is_normalized("NFC", once)
        assert once == once.strip()
        assert "\n\n\n" not in once
        assert "  " not in once
        assert all(ch in " \n" or not ch.isspace() for ch in once)
        assert all(unicodedata.category(ch) != "Cc" or ch == "\n" for ch in once)


def test_title_is_one_line() -> None:
    assert normalise_title("  A\n\nBig\tTitle\r\n ") == "A Big Title"
    assert normalise_title("Cafe\u0301\x00") == "Café"
    assert normalise_title(" \n ") == ""


def test_map_agrees_with_normalise() -> None:
    for text in _random_texts(5000, seed=2):
        out, index = normalise_with_map(text)
        assert out == normalise(text), repr(text)
        assert len(index) == len(out)
        assert all(0 <= i < len(text) for i in index)
        assert index == sorted(index), repr(text)


def test_map_points_at_the_source_characters() -> None:
    raw = "\ufeff  Hello,\r\n\r\n\tw\u006f\u0308rld\x00!  x "
    out, index = normalise_with_map(raw)
    assert out == "Hello,\n\nwörld! x"
    # Unchanged characters map to themselves.
    for i, ch in enumerate(out):
        if ch.isascii() and not ch.isspace():
            assert raw[index[i]] == ch
    # The paragraph break maps to the start of the whitespace run it replaced.
    assert index[out.index("\n")] == raw.index("\r")
    # The composed ö maps to its base letter; the ! after the deleted NUL to itself.
    assert raw[index[out.index("ö")]] == "o"
    assert raw[index[out.index("!")]] == "!"
    # A span of the normalised text maps back to the same words in the raw text.
    start = out.index("wörld")
    end = start + len("wörld")
    assert unicodedata.normalize("NFC", raw[index[start] : index[end - 1] + 1]) == "wörld"


def test_map_of_text_with_nothing_to_change_is_the_identity() -> None:
    text = "Nothing to change here.\n\nNor here."
    assert normalise_with_map(text) == (text, list(range(len(text))))
    assert normalise_with_map("") == ("", [])


def test_a_megabyte_normalises_whole() -> None:
    """Speed is measured in tests/benchmarks, not here; this checks the result."""
    text = _realistic_megabyte()
    assert len(text) >= 1_000_000
    out = normalise(text)
    assert out and "  " not in out
    mapped, index = normalise_with_map(text)
    assert mapped == out and len(index) == len(out)
    decomposed = unicodedata.normalize("NFD", text)
    assert normalise(decomposed) == out


@pytest.mark.parametrize(
    "text",
    [" " * 1_000_000, "\n \n" * 250_000, "a\n" * 500_000, "\x00a" * 500_000, "\u0301" * 500_000],
    ids=["spaces", "breaks", "short-lines", "controls", "marks"],
)
def test_pathological_megabytes(text: str) -> None:
    """Inputs that would be quadratic in a naive loop (the suite's timeout catches that)."""
    out = normalise(text)
    mapped, index = normalise_with_map(text)
    assert mapped == out and len(index) == len(out)
    assert "\x00" not in out and "   " not in out
