"""Webhook delivery: signed body, idempotency key, retries with backoff and jitter, Retry-After.

A 2xx is delivered; 408, 429 and 5xx, timeouts and connection errors are retried; any other
4xx is permanent. What exhausts its attempts is returned as failed, for the caller to send to
the alerts dead-letter topic: nothing is dropped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

import aiohttp

from alerts.formats import render
from alerts.records import Alert
from alerts.settings import TargetSettings

SIGNATURE_HEADER = "X-Finmon-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE = {408, 429}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff for ``attempt`` (1-based), with +/- jitter."""
        raw = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(0.0, raw * (1 + rng.uniform(-self.jitter, self.jitter)))


@dataclass
class Delivery:
    """What happened to one alert at one target."""

    target: str
    outcome: str  # delivered | failed | permanent
    attempts: int
    status: int | None = None
    detail: str = ""
    seconds: float = 0.0
    retries: list[float] = field(default_factory=list)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``; sent as ``t=<timestamp>,v1=<hex>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    expected = sign(secret, parts.get("t", ""), body)
    return hmac.compare_digest(expected, header)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (digits) or an HTTP date (UTC if no zone)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


async def deliver(
    alert: Alert,
    target: TargetSettings,
    session: aiohttp.ClientSession,
    policy: RetryPolicy = RetryPolicy(),
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.time,
    slots: asyncio.Semaphore | None = None,
) -> Delivery:
    """Send ``alert`` to ``target`` until it is delivered, permanently refused, or out of attempts.
    ``slots`` bounds the requests in flight to the target; a retry waits for its turn without one."""
    rng = rng or random.Random()
    body = json.dumps(render(alert, target.format, target.name or "finmon")).encode()
    secret = target.secret.get_secret_value() if target.secret else None
    key = f"{alert.alert_id}:{alert.status}"
    began = time.monotonic()
    result = Delivery(target.label, "failed", 0)
    for attempt in range(1, policy.max_attempts + 1):
        result.attempts = attempt
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, str(int(clock())), body)
        wait = None
        try:
            timeout = aiohttp.ClientTimeout(total=target.timeout)
            async with (
                slots or contextlib.nullcontext(),
                session.post(target.url, data=body, headers=headers, timeout=timeout) as response,
            ):
                result.status = response.status
                if 200 <= response.status < 300:
                    result.outcome = "delivered"
                    break
                result.detail = f"HTTP {response.status}"
                if response.status < 500 and response.status not in RETRYABLE:
                    result.outcome = "permanent"
                    break
                wait = retry_after(response.headers.get("Retry-After"), clock())
        except (TimeoutError, aiohttp.ClientError) as exc:
            result.status = None
            result.detail = f"{type(exc).__name__}: {exc}"[:300]
        if attempt < policy.max_attempts:
            delay = min(policy.max_delay, wait) if wait is not None else policy.delay(attempt, rng)
            result.retries.append(delay)
            await sleep(delay)
    result.seconds = time.monotonic() - began
    return result
