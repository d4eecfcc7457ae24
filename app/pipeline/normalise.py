"""Text normalisation: the stored text of a document is the normalised text.

Every offset the server keeps (chunks, mentions) points into the normalised text, so
offsets are consistent by construction. Clients that need offsets into what they sent
use ``normalise_with_map``, which also says where each normalised character came from.

The rules, in order:

1. Invisible junk goes: control characters other than whitespace (NUL, ESC, DEL, C1
   controls...) and the format characters BOM, zero-width space, word joiner and soft
   hyphen. Zero-width (non-)joiners stay: scripts and emoji need them.
2. Unicode NFC, so the same text typed two ways is the same text (and the same id).
3. Whitespace is whatever ``str.isspace`` says. A run of it becomes one space, except a
   run holding a paragraph break, which becomes ``"\\n\\n"``. A paragraph break is two
   or more line breaks (what ``str.splitlines`` splits on; CRLF counts once) or a form
   feed or U+2029. Single line breaks are folded: hard-wrapped lines are one paragraph.
4. Both ends are stripped.

``normalise`` runs as a handful of C-level passes (a 1 MB text takes a few tens of
milliseconds); ``normalise_with_map`` walks only the places that change.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import compress, repeat

__all__ = ["normalise", "normalise_title", "normalise_with_map"]

# C0 and C1 controls except whitespace, and invisible format characters.
_CONTROL_CODES = (*range(0x00, 0x09), *range(0x0E, 0x1C), *range(0x7F, 0x85), *range(0x86, 0xA0))
_CONTROL_CHARS = (*map(chr, _CONTROL_CODES), "\u00ad", "\u200b", "\u2060", "\ufeff")
_DELETE = re.compile("[" + re.escape("".join(_CONTROL_CHARS)) + "]+")
_KEEP_FLAG = dict.fromkeys(_CONTROL_CHARS, 0)  # .get(ch, 1): 1 for a kept character

_PARAGRAPH_CHARS = ("\x0c", "\u2029")
_OTHER_LINE_BREAKS = ("\r", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028")
_LINE_BREAKS = ("\n", *_OTHER_LINE_BREAKS)

# Two line breaks with nothing but other whitespace between them.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
# Whitespace that changes length: runs of two or more, and paragraph separators.
_GAP = re.compile(r"\s{2,}|[\x0c\u2029]")
# Whitespace that is one character and becomes a space in place.
_LONE_SPACE = re.compile(r"[^\S ]")
_WORD = re.compile(r"\S+")


def normalise(text: str) -> str:
    """The normalised form of ``text`` (see the module docstring for the rules)."""
    # ``ch in text`` is a memchr: far cheaper than a regex scan when nothing matches.
    if any(ch in text for ch in _CONTROL_CHARS):
        text = _DELETE.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    for ch in _OTHER_LINE_BREAKS:
        if ch in text:
            text = text.replace(ch, "\n")
    for ch in _PARAGRAPH_CHARS:
        if ch in text:
            text = text.replace(ch, "\n\n")
    text = unicodedata.normalize("NFC", text)
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text))
    return "\n\n".join(p for p in paragraphs if p)


def normalise_title(title: str) -> str:
    """A title on one line: normalised, with every whitespace run a single space."""
    return " ".join(normalise(title).split())


def normalise_with_map(text: str) -> tuple[str, list[int]]:
    """``normalise(text)`` and, for each of its characters, the index in ``text`` it
    came from. Text left as it was maps to itself; a whitespace run that became one
    space or ``"\\n\\n"`` maps to the run's first character; a character NFC composed
    maps to the first of its parts."""
    kept, origin = _delete_controls(text)
    lo = len(kept) - len(kept.lstrip())
    hi = len(kept.rstrip())
    parts: list[str] = []
    index: list[int] = []
    pos = lo
    for gap in _GAP.finditer(kept, lo, hi):
        start, end = gap.span()
        parts.append(_LONE_SPACE.sub(" ", kept[pos:start]))
        index.extend(range(pos, start))
        replacement = _gap_replacement(gap.group())
        parts.append(replacement)
        if replacement == gap.group():
            index.extend(range(start, end))
        else:
            index.extend([start] * len(replacement))
        pos = end
    parts.append(_LONE_SPACE.sub(" ", kept[pos:hi]))
    index.extend(range(pos, hi))
    out = "".join(parts)
    if not unicodedata.is_normalized("NFC", out):
        out, index = _nfc_with_map(out, index)
    if origin is not None:
        index = list(map(origin.__getitem__, index))
    return out, index


def _delete_controls(text: str) -> tuple[str, list[int] | None]:
    """``text`` without controls, and the original index of each kept character
    (``None`` when nothing was deleted: the identity)."""
    if not any(ch in text for ch in _CONTROL_CHARS):
        return text, None
    runs = [m.span() for m in _DELETE.finditer(text)]
    if len(runs) > len(text) // 64:
        # Controls everywhere: flag each character and keep the positions flagged 1,
        # all at C speed.
        origin = list(compress(range(len(text)), map(_KEEP_FLAG.get, text, repeat(1))))
    else:
        origin = []
        pos = 0
        for start, end in runs:
            origin.extend(range(pos, start))
            pos = end
        origin.extend(range(pos, len(text)))
    return _DELETE.sub("", text), origin


def _gap_replacement(gap: str) -> str:
    """What an inner whitespace run becomes: a paragraph break or one space."""
    if any(ch in gap for ch in _PARAGRAPH_CHARS):
        return "\n\n"
    breaks = sum(gap.count(ch) for ch in _LINE_BREAKS) - gap.count("\r\n")
    return "\n\n" if breaks >= 2 else " "


def _nfc_with_map(text: str, index: list[int]) -> tuple[str, list[int]]:
    """NFC word by word (NFC never acts across whitespace), carrying the index along."""
    parts: list[str] = []
    out_index: list[int] = []
    pos = 0
    for word in _WORD.finditer(text):
        if unicodedata.is_normalized("NFC", word.group()):
            continue
        start, end = word.span()
        parts.append(text[pos:start])
        out_index.extend(index[pos:start])
        composed, word_index = _nfc_word(word.group())
        parts.append(composed)
        out_index.extend(index[start + i] for i in word_index)
        pos = end
    parts.append(text[pos:])
    out_index.extend(index[pos:])
    return "".join(parts), out_index


def _nfc_word(word: str) -> tuple[str, list[int]]:
    """NFC of one word, and for each output character its index in ``word``.

    The word is cut into clusters (a starter and the marks after it); each cluster's
    output maps into the cluster. Where composition crosses clusters (Hangul jamo, a few
    Indic vowel signs) the check below fails and the whole word is one cluster.
    """
    whole = unicodedata.normalize("NFC", word)
    starts = [i for i, ch in enumerate(word) if i == 0 or _starts_cluster(ch)]
    ends = [*starts[1:], len(word)]
    composed = [unicodedata.normalize("NFC", word[a:b]) for a, b in zip(starts, ends, strict=True)]
    if "".join(composed) != whole:
        starts, ends, composed = [0], [len(word)], [whole]
    out_index: list[int] = []
    for a, b, piece in zip(starts, ends, composed, strict=True):
        out_index.extend(a + min(j, b - a - 1) for j in range(len(piece)))
    return whole, out_index


def _starts_cluster(ch: str) -> bool:
    return unicodedata.combining(ch) == 0 and not ("\u1160" <= ch <= "\u11ff")
