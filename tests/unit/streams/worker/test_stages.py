"""Stages run in process with faust's agent test context: no broker; outputs go to a recorder topic."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from models.runtime import Classifier
from streams.core.decode import Limits
from streams.settings import KafkaSettings, StreamSettings, TopicSettings, WindowSettings
from streams.worker.app import base_app
from streams.worker.metrics import WorkerMetrics
from streams.worker.score import OffsetCheck, Scorer, add_score
from streams.worker.stage import Wiring
from streams.worker.trends import Expiry, add_fan_out


class Recorder:
    """Stands in for an output topic: keeps what was sent, acknowledges at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.changed = asyncio.Condition()

    async def send(self, **kwargs: Any) -> asyncio.Future[None]:
        self.sent.append(kwargs)
        async with self.changed:
            self.changed.notify_all()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def wiring(tmp_path: Path, outputs: list[str]) -> Wiring:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    stream = StreamSettings(app_id="stage-test", data_dir=str(tmp_path))
    app = base_app(kafka, TopicSettings(), stream, stream.app_id)
    app.finalize()
    app.flow_control.resume()
    w = Wiring(app, TopicSettings(), stream, WindowSettings(), WorkerMetrics(CollectorRegistry()), clock=lambda: 0.0)
    w.topics.update({name: Recorder() for name in outputs})
    return w


def agent_named(w: Wiring, name: str) -> Any:
    return next(agent for full, agent in w.app.agents.items() if full.rsplit(".", 1)[-1] == name)


def test_fan_out_sends_one_trend_event_per_scope(tmp_path: Path) -> None:
    w = wiring(tmp_path, ["stage-test-trend-events"])
    add_fan_out(w)
    record = {"id": "a", "published_at": "2026-01-01T00:00:00Z", "sentiment": "negative", "score": 0.9}
    record |= {"topic": "Macro", "tickers": ["TSLA", "NKE"], "title": "Tesla and Nike fall"}

    async def run() -> None:
        async with agent_named(w, "fan_out").test_context() as agent:
            await agent.put(json.dumps(record).encode())

    asyncio.run(run())
    sent = w.topics["stage-test-trend-events"].sent
    assert [s["key"] for s in sent] == [b"topic\x1fMacro", b"ticker\x1fTSLA", b"ticker\x1fNKE"]
    assert {json.loads(s["value"])["id"] for s in sent} == {"a"}


def test_score_sends_scored_records_and_dead_letters(tmp_path: Path, tiny_model: Path) -> None:
    w = wiring(tmp_path, ["news.scored", "news.dlq"])
    scorer = Scorer(Classifier.load(tiny_model, device="cpu"), Limits(10_000, 1_000), w.metrics)
    check = OffsetCheck(w)
    check.guard.start(w.app.consumer_generation_id, {0: 0})  # the committed offset, as a started consumer tells it
    add_score(w, scorer, check)
    good = {"id": "n1", "title": "Fed cuts rates", "published_at": "2026-01-01T00:00:00Z"}

    async def run() -> None:
        async with agent_named(w, "score").test_context() as agent:
            await agent.put(json.dumps(good).encode(), key=b"n1")
            await agent.put(b"{not json", key=b"n2")
            dlq = w.topics["news.dlq"]
            async with dlq.changed:  # the batch is scored in the inference thread: wait for its outputs
                await asyncio.wait_for(dlq.changed.wait_for(lambda: bool(dlq.sent)), timeout=30)

    asyncio.run(run())
    scored, dead = w.topics["news.scored"].sent, w.topics["news.dlq"].sent
    assert [json.loads(s["value"])["id"] for s in scored] == ["n1"]
    assert [json.loads(d["value"])["reason"] for d in dead] == ["invalid_json"]
    assert check.guard.scoring is False


def test_expiry_spreads_its_deletions_over_time() -> None:
    clock = [100.0]  # a hand-moved clock: the budget refills with time, not with calls
    expiry = Expiry(interval=30, per_second=50, clock=lambda: clock[0])
    state = {f"k{i}": i for i in range(180)}
    expiry.pending[0].extend((state, key) for key in list(state))
    assert expiry.drain(0) == 50 and len(state) == 130
    assert expiry.drain(0) == 0  # the same second: nothing left to spend
    clock[0] += 0.5
    assert expiry.drain(0) == 25
    clock[0] += 10  # a long quiet spell refills at most one second's worth
    assert expiry.drain(0) == 50 and expiry.drain(0) == 0
    assert len(state) == 55 and expiry.waiting() == [0]
