"""The word definition of keyword search, shared with the services: see app.domain.words."""

from app.domain.words import MAX_QUERY_TERMS, fold, index_text, query_words, words

__all__ = ["MAX_QUERY_TERMS", "fold", "index_text", "query_words", "words"]
