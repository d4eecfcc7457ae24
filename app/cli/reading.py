"""Reading documents from files for ``kg ingest``: txt, md and jsonl, or stdin.

Everything is read and checked before anything is sent, so a bad file (invalid UTF-8,
a malformed JSON line) stops the command with a message naming the file and the place,
and nothing is half-sent.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain.errors import BadInputError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass(frozen=True, slots=True)
class FileDocument:
    title: str
    text: str
    source: str | None
    metadata: dict[str, Any] | None
    origin: str  # "file.jsonl:12", for messages

    def as_input(self) -> dict[str, Any]:
        out: dict[str, Any] = {"title": self.title, "text": self.text}
        if self.source:
            out["source"] = self.source
        if self.metadata:
            out["metadata"] = self.metadata
        return out


def decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInputError(
            f"{name}: not valid UTF-8 (byte {exc.start}, line {line}); "
            "convert the file to UTF-8 first"
        ) from exc


def read_documents(paths: list[str], fmt: str, source: str | None) -> list[FileDocument]:
    docs: list[FileDocument] = []
    for raw in paths:
        if raw == "-":
            data, name, suffix = sys.stdin.buffer.read(), "stdin", ""
        else:
            path = Path(raw)
            if not path.is_file():
                raise BadInputError(f"{raw}: no such file")
            data, name, suffix = path.read_bytes(), raw, path.suffix.lower()
        text = decode(data, name)
        kind = fmt if fmt != "auto" else _kind_of(suffix, text)
        if kind == "jsonl":
            docs.extend(_from_jsonl(text, name, source, _default_source(raw)))
        else:
            title = _title_of(text, Path(name).stem if raw != "-" else "stdin")
            docs.append(FileDocument(title, text, source or _default_source(raw), None, name))
    return docs


def _default_source(raw: str) -> str | None:
    return None if raw == "-" else Path(raw).name


def _kind_of(suffix: str, text: str) -> str:
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return "jsonl" if text.lstrip().startswith("{") else "text"


def _title_of(text: str, fallback: str) -> str:
    """The first Markdown heading, else the first short line, else the file name."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip() or fallback
        return stripped if len(stripped) <= 120 else fallback
    return fallback


def _from_jsonl(
    text: str, name: str, source: str | None, fallback: str | None
) -> list[FileDocument]:
    """One document per line. Source: ``--source``, else the line's, else the file name."""
    docs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{where}: not a JSON object ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise BadInputError(f"{where}: each line must be a JSON object with title and text")
        title, body = obj.get("title"), obj.get("text")
        if not isinstance(title, str) or not isinstance(body, str):
            raise BadInputError(f"{where}: needs string fields 'title' and 'text'")
        meta = obj.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise BadInputError(f"{where}: 'metadata' must be a JSON object")
        line_source = obj.get("source")
        docs.append(
            FileDocument(
                title=title,
                text=body,
                source=source
                or (line_source if isinstance(line_source, str) and line_source else fallback),
                metadata=meta,
                origin=where,
            )
        )
    return docs
