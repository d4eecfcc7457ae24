"""Ingestion: normalise, chunk, extract, resolve, embed and store a document."""
