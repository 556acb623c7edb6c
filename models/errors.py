"""Errors of the model package, grouped by what the caller does next."""

from __future__ import annotations


class ModelError(Exception):
    """Root of every error raised by ``models``."""


class ArtifactError(ModelError):
    """The model folder is missing, incomplete or corrupt: refuse to start."""


class InvalidTextError(ModelError, ValueError):
    """A document cannot be scored (empty text, not a string): dead-letter it."""

    def __init__(self, index: int, reason: str, detail: str) -> None:
        super().__init__(f"document {index}: {detail}")
        self.index = index
        self.reason = reason
        self.detail = detail


class DataError(ModelError, ValueError):
    """A labeled data file cannot be read: fix the file or the flag."""


class ExportCheckError(ModelError):
    """An exported model failed its parity or agreement check."""
