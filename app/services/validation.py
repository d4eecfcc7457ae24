"""Checks on what clients send, before anything is written.

Every refusal is a BadInputError whose message names the field and the limit, so a
person can act on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from app.config import LimitSettings
from app.domain.errors import BadInputError
from app.domain.models import DocumentInput, PageRequest
from app.pipeline.normalise import normalise, normalise_title


def check_batch(inputs: Sequence[DocumentInput], limits: LimitSettings) -> None:
    if not inputs:
        raise BadInputError("inputs is empty: send at least one document")
    if len(inputs) > limits.max_batch_documents:
        raise BadInputError(
            f"too many documents in one batch: {len(inputs)} > {limits.max_batch_documents} "
            "(KG_LIMITS__MAX_BATCH_DOCUMENTS)"
        )


def clean_document(
    doc: DocumentInput, limits: LimitSettings, where: str = "input"
) -> DocumentInput:
    """The document with normalised title and text, or a BadInputError naming the problem."""
    size = len(doc.text.encode("utf-8", "surrogatepass"))
    if size > limits.max_text_bytes:
        raise BadInputError(
            f"{where}.text is {size} bytes, over the limit of {limits.max_text_bytes} bytes "
            "(KG_LIMITS__MAX_TEXT_BYTES)"
        )
    if len(doc.title) > limits.max_title_chars:
        raise BadInputError(
            f"{where}.title is {len(doc.title)} characters, over the limit of "
            f"{limits.max_title_chars} (KG_LIMITS__MAX_TITLE_CHARS)"
        )
    _check_encodable(doc.text, f"{where}.text")
    _check_encodable(doc.title, f"{where}.title")
    text = normalise(doc.text)
    if not text:
        raise BadInputError(f"{where}.text is empty: a document needs some text")
    title = normalise_title(doc.title)
    if not title:
        raise BadInputError(f"{where}.title is empty: a document needs a title")
    if doc.metadata is not None:
        if not isinstance(doc.metadata, dict):
            raise BadInputError(f"{where}.metadata must be a JSON object")
        encoded = json.dumps(doc.metadata, ensure_ascii=False)
        if len(encoded.encode()) > limits.max_metadata_bytes:
            raise BadInputError(
                f"{where}.metadata is over the limit of {limits.max_metadata_bytes} bytes "
                "(KG_LIMITS__MAX_METADATA_BYTES)"
            )
    source = doc.source.strip() if doc.source else None
    return DocumentInput(
        title=title,
        text=text,
        source=source or None,
        published_at=doc.published_at,
        metadata=doc.metadata,
    )


def _check_encodable(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadInputError(
            f"{where} is not valid Unicode (lone surrogate at position {exc.start})"
        ) from exc


def check_page(first: int, offset: int, limits: LimitSettings) -> PageRequest:
    if first < 0:
        raise BadInputError(f"first must be 0 or more, not {first}")
    if first > limits.max_page_size:
        raise BadInputError(
            f"first is {first}, over the page size limit of {limits.max_page_size} "
            "(KG_LIMITS__MAX_PAGE_SIZE)"
        )
    return PageRequest(offset=offset, limit=first)


def check_k(k: int, limits: LimitSettings) -> int:
    if k < 1:
        raise BadInputError(f"k must be at least 1, not {k}")
    if k > limits.max_search_k:
        raise BadInputError(
            f"k is {k}, over the limit of {limits.max_search_k} (KG_LIMITS__MAX_SEARCH_K)"
        )
    return k
