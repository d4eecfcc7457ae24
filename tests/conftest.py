"""Shared fixtures. Model-loading fixtures are session-scoped: models load once per run."""

from __future__ import annotations

import os

# Nothing downloads a model at run time, and one torch thread per process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
