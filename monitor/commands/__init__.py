"""Subcommands of ``finmon``; each module registers its parsers and handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.commands import batch, config, feedback, ingest, model, stream

Register = Callable[[Any], None]

REGISTRY: list[Register] = [
    *model.REGISTER,
    *stream.REGISTER,
    *ingest.REGISTER,
    *batch.REGISTER,
    *feedback.REGISTER,
    *config.REGISTER,
]
