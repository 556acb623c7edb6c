"""Waiting on a Kafka client for a bounded time, even where the client does not let itself be cancelled.

``asyncio.timeout`` cancels what it wraps and then waits for it to end; a client waiting on a frozen
broker can swallow that cancellation and keep waiting. Here the work runs as a task of its own: at
the deadline it is cancelled and left behind, and the caller goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

log = logging.getLogger(__name__)


async def within(work: Awaitable[Any], seconds: float) -> bool:
    """Whether ``work`` ended within ``seconds`` (its error, if any, is raised); if not, it is cancelled
    and abandoned."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        task.add_done_callback(_quiet)
        return False
    if not task.cancelled():  # a client that ends by cancelling its own tasks has ended, not cancelled us
        error = task.exception()
        if error is not None:
            raise error
    return True


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned client's last error is not worth a warning


async def close_all(clients: Iterable[Any], seconds: float, owner: str) -> None:
    """Stop each client (anything with ``stop()`` or ``close()``), ``seconds`` at most each; say which did not."""
    for client in clients:
        if client is None:
            continue
        closing = client.stop() if hasattr(client, "stop") else client.close()
        try:
            if not await within(closing, seconds):
                log.warning("%s: %s did not stop within %.1f s (a broker does not answer); left behind",
                            owner, type(client).__name__, seconds)  # fmt: skip
        except Exception as exc:
            log.warning("%s: %s did not stop cleanly: %s", owner, type(client).__name__, exc)
