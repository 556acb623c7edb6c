"""Errors of the streams package, grouped by what the caller does next."""

from __future__ import annotations


class StreamError(Exception):
    """Root of every error raised by ``streams``."""


class ClusterError(StreamError):
    """The cluster cannot be used as configured (unreachable, or it refused a request finmon needs):
    refuse to start, in one line, before anything is consumed."""


class Rejected(StreamError):
    """A message cannot become a document: dead-letter it with ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
