"""Webhook delivery against a real HTTP receiver on loopback that fails on command."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from alerts.records import Alert
from alerts.settings import TargetSettings
from alerts.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, RetryPolicy, deliver, verify
from tests.integration.conftest import ALERTMANAGER_V4_KEYS, make_alert
from tests.kafka import free_port

pytestmark = pytest.mark.integration

ALERT = Alert.model_validate(
    make_alert(
        "abc123",
        key="Earnings",
        p_value=1e-6,
        observed_negative_share=0.8,
        baseline_negative_share=0.25,
        headlines=[{"id": "n1", "title": "Acme issues profit warning", "score": -0.93}],
        tickers=["ACME"],
    )
)
FAST = RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=2.0)


@dataclass
class Receiver:
    """Records every request; answers from ``plan`` first (an int status, or 'hang'), then 200."""

    port: int
    plan: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"headers": dict(request.headers), "body": body, "at": time.monotonic()})
        step = self.plan.pop(0) if self.plan else 200
        if step == "hang":
            await asyncio.sleep(5)
            return web.Response(status=200)
        if isinstance(step, tuple):
            return web.Response(status=step[0], headers={"Retry-After": step[1]})
        return web.Response(status=step)

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


async def send(receiver: Receiver, target: TargetSettings, delay_start: float = 0.0) -> tuple[Any, list[Any]]:
    async def serve_later() -> web.AppRunner:
        await asyncio.sleep(delay_start)
        return await receiver.start()

    server = asyncio.create_task(serve_later())
    if not delay_start:
        await asyncio.sleep(0.1)  # listening before the first attempt
    async with aiohttp.ClientSession() as session:
        result = await deliver(ALERT, target, session, FAST, random.Random(1))
    await (await server).cleanup()
    return result, receiver.requests


def test_failures_then_recovery_deliver_with_the_same_idempotency_key_and_a_valid_signature() -> None:
    receiver = Receiver(free_port(), plan=[500, 503, "hang", 200])
    target = TargetSettings(url=receiver.url, secret="s3cret", timeout=0.5)
    result, requests = asyncio.run(send(receiver, target))
    assert (result.outcome, result.attempts, result.status) == ("delivered", 4, 200)
    assert len(requests) == 4
    assert {r["headers"][IDEMPOTENCY_HEADER] for r in requests} == {"abc123:firing"}
    for request in requests:
        assert verify("s3cret", request["headers"][SIGNATURE_HEADER], request["body"])
        assert not verify("wrong", request["headers"][SIGNATURE_HEADER], request["body"])
    assert Alert.decode(requests[-1]["body"]) == ALERT


def test_retry_after_is_honoured() -> None:
    receiver = Receiver(free_port(), plan=[(429, "1")])
    result, requests = asyncio.run(send(receiver, TargetSettings(url=receiver.url)))
    assert result.outcome == "delivered" and result.retries == [1.0]
    assert requests[1]["at"] - requests[0]["at"] >= 0.95


def test_connection_refused_for_a_while_is_retried_until_the_receiver_is_up() -> None:
    receiver = Receiver(free_port())
    result, requests = asyncio.run(send(receiver, TargetSettings(url=receiver.url), delay_start=0.4))
    assert result.outcome == "delivered"
    assert result.attempts > 1 and len(requests) == 1


def test_a_4xx_is_permanent_and_exhausted_retries_fail() -> None:
    refused = Receiver(free_port(), plan=[400])
    result, requests = asyncio.run(send(refused, TargetSettings(url=refused.url)))
    assert (result.outcome, result.attempts, len(requests)) == ("permanent", 1, 1)
    down = Receiver(free_port(), plan=[500] * 10)
    result, requests = asyncio.run(send(down, TargetSettings(url=down.url)))
    assert (result.outcome, result.attempts, len(requests)) == ("failed", 6, 6)
    assert result.detail == "HTTP 500"


def test_alertmanager_format_has_the_v4_shape() -> None:
    receiver = Receiver(free_port())
    asyncio.run(send(receiver, TargetSettings(url=receiver.url, format="alertmanager")))
    payload = json.loads(receiver.requests[0]["body"])
    assert payload["version"] == "4"
    assert set(payload) >= ALERTMANAGER_V4_KEYS
    [alert] = payload["alerts"]
    assert set(alert) >= {"labels", "annotations", "startsAt", "endsAt", "fingerprint", "status"}
    assert alert["labels"]["key"] == "Earnings" and "profit warning" in alert["annotations"]["headlines"]
