"""Alerts end to end on Apache Kafka: a surge fires once and resolves once; delivery survives a kill."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from alerts.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify
from models.artifact import load_artifact
from models.settings import CHINESE_MODEL_DIR, DEFAULT_MODEL_DIR, MULTILINGUAL_MODEL_DIR
from monitor.feed import FeedOptions, run_feed
from streams.settings import KafkaSettings
from tests.integration.conftest import Pipeline, Receiver, encode, good_documents, make_alert, stop, wait_for
from tests.kafka import free_port

pytestmark = pytest.mark.integration
WINDOW = 3


def alert_env(pipeline: Pipeline, receiver: Receiver) -> None:
    pipeline.extra_env.update(
        {
            "FINMON_WINDOWS__TUMBLING_SECONDS": str(WINDOW),
            "FINMON_WINDOWS__HOPPING_SECONDS": str(2 * WINDOW),
            "FINMON_WINDOWS__HOPPING_STEP_SECONDS": str(WINDOW),
            "FINMON_WINDOWS__GRACE_SECONDS": "1",
            "FINMON_WINDOWS__EMIT_INTERVAL": "0.5",
            "FINMON_ALERTS__TARGETS": json.dumps([{"url": receiver.url, "secret": "k", "name": "test"}]),
            "FINMON_ALERTS__BASE_DELAY": "0.2",
            "FINMON_ALERTS__MAX_ATTEMPTS": "20",
            "FINMON_ALERTS__MIN_COUNT": "6",
        }
    )


async def feed_live(url: str, topic: str, phases: list[tuple[float, bool]], per_second: int = 5) -> float:
    """Send oil and Fed headlines in real time; during a surge every oil headline is negative."""
    producer = AIOKafkaProducer(bootstrap_servers=url)
    await producer.start()
    surge_started = 0.0
    n = 0
    try:
        for seconds, surge in phases:
            if surge and not surge_started:
                surge_started = time.time()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for topic_word in ("oil", "fed"):
                    for _ in range(per_second):
                        mood = "bad" if surge and topic_word == "oil" else ("bad", "flat", "good", "flat")[n % 4]
                        n += 1
                        doc = {
                            "id": f"live-{n}",
                            "published_at": datetime.now(UTC).isoformat(),
                            "title": f"{mood} {topic_word} w{n % 40} story {n}",
                            "source": "test",
                        }
                        await producer.send(topic, json.dumps(doc).encode(), key=doc["id"].encode())
                await asyncio.sleep(1.0)
        await producer.flush()
    finally:
        await producer.stop()
    return surge_started


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def test_a_surge_on_one_topic_fires_once_and_resolves_once(pipeline: Pipeline, receiver: Receiver) -> None:
    alert_env(pipeline, receiver)
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        phases = [(8 * WINDOW, False), (3 * WINDOW, True), (5 * WINDOW, False)]
        surge_at = asyncio.run(feed_live(pipeline.url, pipeline.topics["news"], phases))
        assert receiver.wait_for(lambda r: any(x["body"]["status"] == "resolved" for x in r), timeout=30)
        time.sleep(2 * WINDOW)
    finally:
        stop(worker)
    bodies = [r["body"] for r in receiver.requests]
    assert [(b["status"], b["key"]) for b in bodies] == [("firing", "Energy / Oil"), ("resolved", "Energy / Oil")]
    firing, resolved = bodies
    assert firing["alert_id"] == resolved["alert_id"]
    started = datetime.fromisoformat(firing["window"]["start"]).timestamp()
    assert started <= surge_at + 2 * WINDOW, "fired more than two windows after the surge began"
    assert firing["observed_negative_share"] > 0.6 and firing["headlines"]
    assert all("bad oil" in h["title"] for h in firing["headlines"])
    for request in receiver.requests:
        assert verify("k", request["headers"][SIGNATURE_HEADER], request["raw"])


async def feed_company(url: str, topic: str, phases: list[tuple[float, str]], per_second: int = 5) -> None:
    """Fed headlines throughout, and headlines naming Tesla (no cashtag, no tickers field): mixed in a
    ``normal`` phase, all bad in a ``surge``, none at all once ``quiet``."""
    producer = AIOKafkaProducer(bootstrap_servers=url)
    await producer.start()
    n = 0
    try:
        for seconds, mode in phases:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for subject in ("fed", "tesla"):
                    if subject == "tesla" and mode == "quiet":
                        continue
                    for _ in range(per_second):
                        n += 1
                        mood = (
                            "bad" if mode == "surge" and subject == "tesla" else ("bad", "flat", "good", "flat")[n % 4]
                        )
                        title = (
                            f"{mood} oil w{n % 40} as Tesla story {n}"
                            if subject == "tesla"
                            else f"{mood} fed w{n % 40} {n}"
                        )
                        doc = {"id": f"co-{n}", "published_at": datetime.now(UTC).isoformat(), "title": title}
                        await producer.send(topic, json.dumps(doc).encode(), key=doc["id"].encode())
                await asyncio.sleep(1.0)
        await producer.flush()
    finally:
        await producer.stop()


def test_a_company_named_in_headlines_fires_on_its_ticker_and_resolves_when_it_goes_quiet(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    alert_env(pipeline, receiver)
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        phases = [(8 * WINDOW, "normal"), (3 * WINDOW, "surge"), (6 * WINDOW, "quiet")]
        asyncio.run(feed_company(pipeline.url, pipeline.topics["news"], phases))

        def ticker_resolved(requests: list[dict[str, Any]]) -> bool:
            return any(r["body"]["scope"] == "ticker" and r["body"]["status"] == "resolved" for r in requests)

        assert receiver.wait_for(ticker_resolved, timeout=30), [r["body"]["key"] for r in receiver.requests]
        scored = pipeline.consume("scored", lambda r: any("Tesla" in x["title"] for x in r), timeout=30)
    finally:
        stop(worker)
    named = next(r for r in scored if "Tesla" in r["title"])
    assert named["tickers"] == ["TSLA"]
    assert [(e["ticker"], e["role"], e["part"], e["text"]) for e in named["entities"]] == [
        ("TSLA", "subject", "title", "Tesla")
    ]
    ticker = [r["body"] for r in receiver.requests if r["body"]["scope"] == "ticker"]
    assert [(b["status"], b["key"], b["reason"]) for b in ticker] == [
        ("firing", "TSLA", "negative_share"),
        ("resolved", "TSLA", "negative_share"),
    ]
    # no Tesla story came after the surge: the windows that resolve it are the empty ones reported for it
    assert ticker[1]["count"] == 0
    assert "negative_share:" in ticker[0]["summary"]


def test_an_alert_interrupted_mid_delivery_is_delivered_after_restart(pipeline: Pipeline) -> None:
    with Receiver(hang_first=1) as receiver:
        alert_env(pipeline, receiver)
        alert = make_alert("kill-test")
        worker = pipeline.start_worker()
        try:
            pipeline.wait_ready(worker)

            asyncio.run(_produce_alert(pipeline, alert))
            assert receiver.wait_for(lambda r: len(r) >= 1, timeout=30), "the alert never reached the receiver"
        finally:
            stop(worker, signal.SIGKILL)
        worker = pipeline.start_worker()
        try:
            assert receiver.wait_for(lambda r: len(r) >= 2, timeout=60), "not delivered after the restart"
        finally:
            stop(worker)
        keys = [r["headers"][IDEMPOTENCY_HEADER] for r in receiver.requests]
        assert keys[:2] == ["kill-test:firing", "kill-test:firing"]


async def _produce_alert(pipeline: Pipeline, alert: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.url)
    await producer.start()
    try:
        await producer.send_and_wait(
            pipeline.topics["alerts"], json.dumps(alert).encode(), key=alert["alert_id"].encode()
        )
    finally:
        await producer.stop()


def test_finmon_alerts_delivers_on_its_own_in_the_alertmanager_format(pipeline: Pipeline) -> None:
    import os
    import subprocess
    import sys

    with Receiver() as receiver:
        alert_env(pipeline, receiver)
        pipeline.extra_env["FINMON_ALERTS__TARGETS"] = json.dumps([{"url": receiver.url, "format": "alertmanager"}])
        env = pipeline.env()
        log = (pipeline.folder / "alerts.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "alerts"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            alert = make_alert("solo", status="resolved", scope="ticker", key="ACME", observed_negative_share=0.1)
            asyncio.run(_produce_alert(pipeline, alert))
            assert receiver.wait_for(lambda r: len(r) >= 1, timeout=60), (pipeline.folder / "alerts.log").read_text()
        finally:
            stop(process)
        [request] = receiver.requests
        assert request["body"]["version"] == "4" and request["body"]["status"] == "resolved"
        assert request["body"]["alerts"][0]["labels"]["key"] == "ACME"
        assert os.environ.get("FINMON_ALERTS__TARGETS") is None


def test_an_undeliverable_alert_goes_to_the_alerts_dlq(pipeline: Pipeline) -> None:
    with Receiver() as receiver:
        alert_env(pipeline, receiver)
    closed = f"http://127.0.0.1:{free_port()}/nobody-listens"
    pipeline.extra_env.update(
        {
            "FINMON_ALERTS__TARGETS": json.dumps([{"url": closed, "name": "gone"}]),
            "FINMON_ALERTS__MAX_ATTEMPTS": "2",
            "FINMON_ALERTS__BASE_DELAY": "0.1",
        }
    )
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        alert = make_alert("lost?")
        asyncio.run(_produce_alert(pipeline, alert))
        [letter] = pipeline.consume("alerts_dlq", lambda r: len(r) >= 1, timeout=60)
        assert letter["alert"]["alert_id"] == "lost?"
        assert letter["failures"][0]["target"] == "gone" and letter["failures"][0]["attempts"] == 2
        assert "finmon_alerts_dead_lettered_total 1.0" in pipeline.metrics()
    finally:
        stop(worker)


def test_alerts_wait_out_a_long_outage_across_a_restart_and_arrive_in_order_per_key(pipeline: Pipeline) -> None:
    """Nothing listens on the target's port for a long stretch, and the worker is killed in between:
    with enough attempts configured, alerts queue instead of being dead-lettered, and all arrive once
    the receiver is up, each key's in the order raised (its firing before its resolved)."""
    port = free_port()
    pipeline.extra_env.update(
        {
            "FINMON_ALERTS__TARGETS": json.dumps([{"url": f"http://127.0.0.1:{port}/hook", "name": "desk"}]),
            "FINMON_ALERTS__BASE_DELAY": "0.2",
            "FINMON_ALERTS__MAX_DELAY": "1",
            "FINMON_ALERTS__MAX_ATTEMPTS": "10000",
        }
    )
    keys = [f"Topic {i}" for i in range(5)]
    alerts = [make_alert(f"outage-{i}", key=k) for i, k in enumerate(keys)]
    alerts += [make_alert(f"outage-{i}", status="resolved", key=k) for i, k in enumerate(keys)]
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        for alert in alerts:
            asyncio.run(_produce_alert(pipeline, alert))
        retried = re.compile(r'^finmon_alert_delivery_retries_total\{target="desk"\} (\d+)', re.MULTILINE)
        wait_for(lambda: int(float(retried.search(pipeline.metrics()).group(1))) >= 10, "the target was tried", 60)
    finally:
        stop(worker, signal.SIGKILL)
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        with Receiver(port=port) as receiver:
            everything = {(a["alert_id"], a["status"]) for a in alerts}
            assert receiver.wait_for(lambda r: {(x["body"]["alert_id"], x["body"]["status"]) for x in r} >= everything,
                                     timeout=60)  # fmt: skip
            arrived = [(x["body"]["key"], x["body"]["status"]) for x in list(receiver.requests)]
    finally:
        stop(worker)
    for key in keys:
        assert arrived.index((key, "firing")) < arrived.index((key, "resolved")), key
    assert pipeline.consume("alerts_dlq", lambda r: False, timeout=3) == []


def delivering(pipeline: Pipeline, target: str) -> int:
    """Partitions of the alerts topic this worker delivers to ``target`` (0 while it cannot answer)."""
    try:
        text = pipeline.metrics()
    except OSError:
        return 0
    found = re.search(rf'^finmon_alert_delivery_partitions{{target="{target}"}} (\S+)', text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


def test_a_target_that_hangs_for_minutes_holds_up_nothing_else(pipeline: Pipeline) -> None:
    """One target takes requests and never answers (each try waits 10 minutes); beside it a healthy
    target gets every alert, scoring goes on, a second worker's joining rebalances both targets'
    groups within the session timeout, SIGTERM stops each worker within 30 s, and once the hanging
    target answers again every alert reaches it after a restart: nothing was dropped."""
    with Receiver(hang_first=10**9) as hanging, Receiver() as healthy:
        targets = [{"url": hanging.url, "name": "hangs", "timeout": 600}, {"url": healthy.url, "name": "desk"}]
        pipeline.extra_env.update({"FINMON_ALERTS__TARGETS": json.dumps(targets), "FINMON_TOPICS__PARTITIONS": "4"})
        second = dataclasses.replace(pipeline, folder=pipeline.folder / "second", web_port=free_port())
        second.folder.mkdir()
        first_worker = pipeline.start_worker()
        second_worker = None
        alerts = [make_alert(f"iso-{i}", key=f"Topic {i}") for i in range(20)]
        try:
            pipeline.wait_ready(first_worker)
            wait_for(lambda: delivering(pipeline, "hangs") > 0, "the first worker delivers", 60)
            partitions = delivering(pipeline, "hangs")
            for alert in alerts:
                asyncio.run(_produce_alert(pipeline, alert))
            ids = {a["alert_id"] for a in alerts}
            assert healthy.wait_for(lambda r: {x["body"]["alert_id"] for x in r} >= ids, timeout=30)
            assert hanging.wait_for(lambda r: len(r) >= 8, timeout=30), "the hanging target got its 8 requests"
            docs = good_documents(30)
            pipeline.produce([encode(d) for d in docs])
            scored = pipeline.consume("scored", lambda r: len(r) >= 30, timeout=60)
            assert {r["id"] for r in scored} == {d["id"] for d in docs}

            joined = time.monotonic()
            second_worker = second.start_worker()
            wait_for(
                lambda: (
                    delivering(second, "hangs") > 0
                    and delivering(pipeline, "hangs") + delivering(second, "hangs") == partitions
                ),
                "the hanging target's group rebalanced",
                timeout=60,
            )
            rebalanced = time.monotonic() - joined
            later = [make_alert(f"iso-later-{i}", key=f"Later {i}") for i in range(6)]
            for alert in later:
                asyncio.run(_produce_alert(pipeline, alert))
            ids |= {a["alert_id"] for a in later}
            assert healthy.wait_for(lambda r: {x["body"]["alert_id"] for x in r} >= ids, timeout=30)
        finally:
            took = {}
            for name, worker in (("first", first_worker), ("second", second_worker)):
                if worker is not None:
                    began = time.monotonic()
                    stop(worker)
                    took[name] = (time.monotonic() - began, worker.returncode)
        print(f"joined and rebalanced in {rebalanced:.1f} s; stopped in {took}")
        assert rebalanced < 30, "a worker waiting on a hung request held up the rebalance"
        for name, (seconds, code) in took.items():
            assert seconds < 30 and code == 0, (name, seconds, code)

        hung, hanging.hang_first = len(hanging.requests), 0  # the target answers again
        worker = pipeline.start_worker()
        try:
            assert hanging.wait_for(lambda r: {x["body"]["alert_id"] for x in r[hung:]} >= ids, timeout=90)
        finally:
            stop(worker)
    assert pipeline.consume("alerts_dlq", lambda r: False, timeout=3) == []


def test_a_mixed_english_and_chinese_stream_fires_on_an_a_share_with_the_default_models(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    """The synthetic mixed stream (30% Chinese) through the shipped English and Chinese models,
    with a surge of negative Chinese stories about 贵州茅台: scored, tagged by name and code, windowed
    per ticker, and alerted on 600519.SH."""
    alert_env(pipeline, receiver)
    pipeline.extra_env.update(
        {
            "FINMON_MODEL__PATH": str(DEFAULT_MODEL_DIR),
            "FINMON_MODEL__MULTILINGUAL_PATH": str(MULTILINGUAL_MODEL_DIR),
            "FINMON_MODEL__CHINESE_PATH": str(CHINESE_MODEL_DIR),
        }
    )
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker, timeout=120)
        options = FeedOptions(
            rate=10, count=10 * 16 * WINDOW, lang="mixed", surge_key="600519.SH", surge_at=8 * WINDOW,
            surge_seconds=3 * WINDOW,
        )  # fmt: skip
        run_feed(KafkaSettings(bootstrap_servers=pipeline.url), pipeline.topics["news"], options)

        def fired(requests: list[dict[str, Any]]) -> bool:
            return any(r["body"]["scope"] == "ticker" and r["body"]["key"] == "600519.SH" for r in requests)

        assert receiver.wait_for(fired, timeout=60), [(r["body"]["scope"], r["body"]["key"]) for r in receiver.requests]
        scored = pipeline.consume("scored", lambda r: len(r) >= options.count, timeout=60)
        trends = pipeline.consume("trends", lambda r: any(t["key"] == "600519.SH" for t in r), timeout=30)
    finally:
        stop(worker)
    english, chinese_model = load_artifact(DEFAULT_MODEL_DIR).version, load_artifact(CHINESE_MODEL_DIR).version
    chinese = [r for r in scored if r["lang"] == "zh"]
    assert 0.3 * len(scored) < len(chinese) < 0.6 * len(scored)  # a third at the base rate, more in the surge
    assert {r["model_version"] for r in chinese} == {chinese_model}
    assert {r["model_version"] for r in scored if r["lang"] == "en"} == {english}
    moutai = [r for r in chinese if "贵州茅台" in r["title"]]
    assert moutai and all(r["tickers"] == ["600519.SH"] for r in moutai)
    assert sum(r["sentiment"] == "negative" for r in moutai) > 0.6 * len(moutai)
    alert = next(r["body"] for r in receiver.requests if r["body"]["key"] == "600519.SH")
    assert alert["status"] == "firing" and alert["observed_negative_share"] > 0.6
    assert all("贵州茅台" in h["title"] for h in alert["headlines"])
    assert any(t["scope"] == "ticker" and t["key"] == "600519.SH" and t["total"] for t in trends)
