"""Attacks on the worker's guarantees, on a real Apache Kafka broker with worker processes: nothing is lost."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tests.feeds import Item, Publishers, Route, rss
from tests.integration.conftest import (
    Pipeline,
    Receiver,
    encode,
    expected_windows,
    feed_through_kills,
    good_documents,
    make_alert,
    stop,
    wait_for,
    windows_match,
)
from tests.kafka import KafkaCluster, free_port
from tests.tiny_model import build_slow_model

pytestmark = pytest.mark.integration
MiB = 1 << 20


def fuzz_corpus(seed: int = 5) -> list[tuple[bytes | None, bytes]]:
    """Inputs a news feed should never send, and a few odd ones it may; each becomes a scored
    document or a dead letter. Values are (key, message) pairs."""
    rng = random.Random(seed)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def doc(i: int, **fields: Any) -> bytes:
        base = {"id": f"fz-{i}", "published_at": now, "source": "fuzz", "title": f"good oil w{i % 40}"}
        return json.dumps({**base, **fields}, ensure_ascii=False).encode("utf-8", "surrogatepass")

    corpus = [rng.randbytes(rng.randint(1, 300)) for _ in range(10)]
    corpus += [
        doc(100)[:25],  # truncated JSON
        b"[" * 100_000 + b"]" * 100_000,  # deeply nested
        doc(101, body="x" * (10 * MiB)),  # a 10 MB string
        b'{"id": "fz-102", "title": "caf\xe9 \xff\xfe"}',  # invalid UTF-8
        doc(103, title="\ud800 lone surrogate"),  # a surrogate, raw in the bytes
        b'{"id": "fz-104", "published_at": "' + now.encode() + b'", "title": "esc \\udfff"}',  # escaped surrogate
        doc(105, id=105),  # a number where a string belongs
        doc(106, title=["a", "list"]),
        doc(107, published_at=None),
        json.dumps({"id": "fz-108", "title": "no time"}).encode(),  # missing published_at
        doc(109, published_at="2026-11-24T09:00:00"),  # naive
        doc(110, published_at="1970-01-01T00:00:00Z"),  # far past: scored, windows count it late
        doc(111, published_at="2999-12-31T23:59:59Z"),  # far future: scored, windows do not count it
        doc(112, title="bad fed \x00\x07\x1b[31m control \u202e characters"),
        doc(113, title="<script>alert(1)</script> <b>good</b> dividend &amp; more"),
        doc(114, title="good ipo 🚀📈 émoji ünïcode 中文"),
        doc(115, tickers="TSLA"),  # a string where a list belongs
        doc(116, title="", body=""),  # empty text
        doc(117, desk={"nested": [1, 2, {"deep": True}]}),  # unknown fields are kept
        b"",  # empty message
        b"null",
        b'"just a string"',
    ]
    corpus += [doc(118), doc(118)]  # a duplicate id
    return [(None, value) for value in corpus]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def produce_big(pipeline: Pipeline, messages: list[tuple[bytes | None, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.url, max_request_size=16 * MiB)
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(pipeline.topics["news"], value, key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


def test_a_fuzz_corpus_ends_scored_or_dead_lettered_and_the_worker_lives(pipeline: Pipeline) -> None:
    corpus = fuzz_corpus()
    admin = KafkaAdminClient(bootstrap_servers=pipeline.url)
    try:  # a news topic that accepts the 10 MB message, so that the worker is the one to refuse it
        admin.create_topics(
            [NewTopic(pipeline.topics["news"], 1, 1, topic_configs={"max.message.bytes": str(16 * MiB)})]
        )
    finally:
        admin.close()
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        produce_big(pipeline, corpus)
        produce_big(pipeline, [encode(d) for d in good_documents(20)])
        expected = len(corpus) + 20

        def outcomes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            scored = pipeline.consume("scored", lambda r: False, timeout=3)
            dead = pipeline.consume("dlq", lambda r: False, timeout=3)
            return scored, dead

        deadline = time.monotonic() + 90
        scored, dead = outcomes()
        while len(scored) + len(dead) < expected and time.monotonic() < deadline:
            scored, dead = outcomes()
        assert len(scored) + len(dead) == expected, "every message ends on news.scored or news.dlq, once"
        assert worker.poll() is None, "the worker is still running"
        ids = [r["id"] for r in scored]
        assert ids.count("fz-118") == 2 and {"fz-110", "fz-111", "fz-112", "fz-113", "fz-114", "fz-117"} <= set(ids)
        assert next(r for r in scored if r["id"] == "fz-113")["title"].startswith("<script>")
        reasons = {r["reason"] for r in dead}
        assert reasons == {"invalid_json", "invalid_utf8", "schema", "too_large", "empty_text", "empty_message"}
        huge = next(r for r in dead if r["reason"] == "too_large")
        assert huge["original_omitted"] and huge["original_bytes"] > 10 * MiB and huge["original_base64"] == ""
        assert huge["source_offset"] is not None and len(json.dumps(huge)) < 4096
        assert rss_bytes(worker.pid) < 1024 * MiB, "memory stays bounded after a 10 MB message"
        metrics = pipeline.metrics()
        assert re.search(r'finmon_window_events_total\{outcome="late",scope="topic"\} [1-9]', metrics)
        assert re.search(r'finmon_window_events_total\{outcome="future",scope="topic"\} [1-9]', metrics)
    finally:
        stop(worker)


def test_repeated_kills_lose_nothing_and_windows_count_each_document_once(pipeline: Pipeline) -> None:
    # Each chunk is written when it is sent, and a 2-minute grace covers four slow restarts, so no
    # document is late; windows counted by a worker killed before it published them appear when
    # they close (their final record).
    pipeline.extra_env["FINMON_WINDOWS__GRACE_SECONDS"] = "120"
    docs = feed_through_kills(pipeline, size=30, seed=11, pause=(0.0, 1.5))
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker, timeout=90)
        everything = {d["id"] for d in docs}
        scored = pipeline.consume("scored", lambda r: {x["id"] for x in r} >= everything, timeout=120)
        assert {r["id"] for r in scored} >= everything, "every document is on news.scored at least once"
        expected = expected_windows(docs)
        records = pipeline.consume("trends", windows_match(expected), timeout=300)
        latest = {(r["scope"], r["key"], r["window_start"]): r["counts"] for r in records if r["window"] == "60s"}
        wrong = {
            key: (dict(counts), {s: n for s, n in latest.get(key, {}).items() if n})
            for key, counts in expected.items()
            if {s: n for s, n in latest.get(key, {}).items() if n} != dict(counts)
        }
        assert not wrong, f"windows (expected, counted): {wrong}"
    finally:
        stop(worker)


def committed(pipeline: Pipeline) -> int | None:
    async def read() -> int | None:
        consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.url, group_id=pipeline.name, enable_auto_commit=False)
        await consumer.start()
        try:
            return await consumer.committed(TopicPartition(pipeline.topics["news"], 0))
        finally:
            await consumer.stop()

    return asyncio.run(read())


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_bad_model_folder_refuses_to_start_before_consuming(
    pipeline: Pipeline, tiny_model: Path, tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "model"
    if damage == "corrupt":
        subprocess.run(["cp", "-r", str(tiny_model), str(folder)], check=True)
        weights = folder / "model.int8.onnx"
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    pipeline.model = folder
    pipeline.produce([encode(d) for d in good_documents(5)])
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "worker"], env=pipeline.env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    expected = "does not exist" if damage == "missing" else "does not match its sha256"
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert committed(pipeline) is None, "nothing was consumed"


def test_a_slow_model_does_not_make_the_group_rebalance(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.model = build_slow_model(tmp_path / "slow", matmuls=40)
    pipeline.extra_env.update(
        {
            "FINMON_STREAM__SESSION_TIMEOUT": "3",
            "FINMON_STREAM__HEARTBEAT_INTERVAL": "1",
            "FINMON_STREAM__BATCH_MAX": "2",
            "FINMON_ALERTS__ENABLED": "false",
        }
    )
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker, timeout=90)
        before = pipeline.metrics()
        docs = good_documents(6)
        began = time.monotonic()
        pipeline.produce([encode(d) for d in docs])
        scored = pipeline.consume("scored", lambda r: len(r) >= 6, timeout=240)
        took = time.monotonic() - began
        assert {r["id"] for r in scored} == {d["id"] for d in docs}
        after = pipeline.metrics()
        batches = re.search(r"^finmon_inference_batch_seconds_count (\S+)", after, re.MULTILINE)
        slowest = re.search(r'^finmon_inference_batch_seconds_bucket{le="2.5"} (\S+)', after, re.MULTILINE)
        assert batches and slowest and float(batches.group(1)) > float(slowest.group(1)), "some batch took > 2.5 s"
        rebalances = re.compile(r"^finmon_rebalances_total (\S+)", re.MULTILINE)
        assert rebalances.search(before) and rebalances.search(after)
        assert rebalances.search(after).group(1) == rebalances.search(before).group(1), (  # type: ignore[union-attr]
            f"the group rebalanced while inference took {took:.0f} s with a 3 s session timeout"
        )
    finally:
        stop(worker)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_secrets_stay_out_of_logs_metrics_and_config_and_the_web_port_is_loopback(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    secrets = {
        "FINMON_KAFKA__SASL_PASSWORD": "sasl-pw-7d1f",
        "FINMON_WEB__TOKEN": "web-token-90aa",
        "FINMON_ALERTS__TARGETS": json.dumps([{"url": "http://127.0.0.1:9/hook", "secret": "hook-key-3c5e"}]),
    }
    values = ["sasl-pw-7d1f", "web-token-90aa", "hook-key-3c5e"]
    pipeline.extra_env.update(secrets)
    pipeline.extra_env.pop("FINMON_STREAM__WEB_HOST", None)
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        pipeline.produce([encode(d) for d in good_documents(5)])
        pipeline.consume("scored", lambda r: len(r) >= 5)
        metrics = pipeline.metrics()
        assert listening_addresses(pipeline.web_port) == {"0100007F"}, "bound to 127.0.0.1 only"
    finally:
        stop(worker)
    shown = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "-v", "config", "show"],
        env=pipeline.env(),
        capture_output=True,
        text=True,
    )
    log = (pipeline.folder / "worker.log").read_text()
    for value in values:
        assert value not in metrics and value not in log and value not in shown.stdout + shown.stderr, value
    assert json.loads(shown.stdout)["web"]["token"] == "**********"


def test_a_broker_that_stops_answering_for_a_while_loses_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    """The broker is frozen (SIGSTOP) for longer than the session timeout: the worker must ride the outage out."""
    with KafkaCluster(tmp_path / "own-kafka") as own:
        node = own.nodes[0]
        assert node.process is not None
        isolated = dataclasses.replace(pipeline, url=own.url)
        worker = isolated.start_worker()
        try:
            isolated.wait_ready(worker)
            before, during = good_documents(20), good_documents(20, start=20)
            isolated.produce([encode(d) for d in before])
            isolated.consume("scored", lambda r: len(r) >= 20)
            os.killpg(node.process.pid, signal.SIGSTOP)
            time.sleep(20)  # the outage itself: longer than the session timeout the worker was given (6 s)
            assert worker.poll() is None, "the worker did not give up while the broker was away"
            os.killpg(node.process.pid, signal.SIGCONT)
            isolated.produce([encode(d) for d in during])
            wanted = {d["id"] for d in before + during}
            scored = isolated.consume("scored", lambda r: wanted <= {x["id"] for x in r}, timeout=120)
            assert wanted <= {r["id"] for r in scored}, (isolated.folder / "worker.log").read_text()[-6000:]
            assert worker.poll() is None
        finally:
            if node.running:
                os.killpg(node.process.pid, signal.SIGCONT)
            stop(worker)


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_every_process_stops_within_30_s_of_sigterm_whatever_the_broker_does(
    pipeline: Pipeline, tmp_path: Path, fault: str
) -> None:
    """A worker (delivering to a webhook), the dashboard, `finmon alerts` and `finmon ingest` (a request
    hanging) run on a broker that is then SIGKILLed (connections refused) or SIGSTOPped (connections
    hang) with work in flight: each process stops within 30 s of SIGTERM, by itself, and says what it left."""
    with (
        KafkaCluster(tmp_path / "own-kafka") as own,
        Receiver(hang_first=10**9) as hanging,
        Publishers(["steady", "hangs"]) as publishers,
    ):
        publishers.serve("steady", "/feed", Route(rss([Item("Steady", "/1", "s-1", None)]).encode()))
        publishers.serve("hangs", "/feed", Route(behaviour="hang"))  # a request in flight at SIGTERM
        node = own.nodes[0]
        assert node.process is not None
        isolated = dataclasses.replace(pipeline, url=own.url)
        isolated.extra_env["FINMON_ALERTS__TARGETS"] = json.dumps([{"url": hanging.url, "name": "hangs"}])
        worker = isolated.start_worker()
        processes = {"worker": worker}
        try:
            isolated.wait_ready(worker)
            processes["dashboard"] = isolated.start_dashboard()
            delivery = dataclasses.replace(isolated, web_port=free_port(), extra_env=dict(isolated.extra_env))
            delivery.extra_env["FINMON_ALERTS__TARGETS"] = json.dumps([{"url": hanging.url, "name": "hangs-too"}])
            processes["alerts"] = delivery.start("alerts")
            wait_for(lambda: delivery.delivers_alerts(), "finmon alerts started delivering", 60)
            ingest_port = free_port()
            sources = tmp_path / "sources.yaml"
            sources.write_text(
                "sources:\n"
                f"  - {{name: steady, kind: rss, url: '{publishers.url('steady', '/feed')}', interval: 1}}\n"
                f"  - {{name: hangs, kind: rss, url: '{publishers.url('hangs', '/feed')}', interval: 1}}\n"
            )
            ingesting = dataclasses.replace(isolated, extra_env=dict(isolated.extra_env))
            ingesting.extra_env.update(
                {"FINMON_INGEST__SOURCES": str(sources), "FINMON_INGEST__WEB_PORT": str(ingest_port)}
            )
            processes["ingest"] = ingesting.start("ingest")
            wait_for(lambda: len(publishers.hits("steady", "/feed")) >= 2, "finmon ingest polls its sources", 60)
            isolated.produce([encode(d) for d in good_documents(20)])
            isolated.consume("scored", lambda r: len(r) >= 20)
            isolated.produce([(b"a1", json.dumps(make_alert("a1")).encode())], topic="alerts")
            assert hanging.wait_for(lambda r: len(r) >= 2, timeout=60), "an alert is in flight to each target"
            isolated.produce([encode(d) for d in good_documents(200, start=100)])
            os.killpg(node.process.pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
            wait_for(lambda: all(p.poll() is None for p in processes.values()), "all still running", 5)
            began = time.monotonic()
            for process in processes.values():
                os.killpg(process.pid, signal.SIGTERM)
            took: dict[str, float | None] = dict.fromkeys(processes)
            while time.monotonic() - began < 30 and any(p.poll() is None for p in processes.values()):
                for name, process in processes.items():
                    if took[name] is None and process.poll() is not None:
                        took[name] = round(time.monotonic() - began, 1)
                time.sleep(0.1)
            for name, process in processes.items():
                if took[name] is None and process.poll() is not None:
                    took[name] = round(time.monotonic() - began, 1)
        finally:
            if node.running and fault == "frozen":
                os.killpg(node.process.pid, signal.SIGCONT)
            for process in processes.values():
                stop(process, signal.SIGKILL)
    print(f"broker {fault}: stopped after SIGTERM in {took} s")
    assert all(seconds is not None for seconds in took.values()), f"still running 30 s after SIGTERM: {took}"
    for name, process in processes.items():
        log = (isolated.folder / f"{name}.log").read_text()
        # a clean stop, or one that says in one line that it left the flush to a broker that does not answer
        assert process.returncode == 0 or (process.returncode == 1 and f"finmon {name}: did not stop within" in log), (
            name,
            process.returncode,
            log[-3000:],
        )
    logs = (isolated.folder / "worker.log").read_text() + (isolated.folder / "alerts.log").read_text()
    assert "not yet delivered to hangs; delivered after the next start" in logs
    assert "not yet delivered to hangs-too; delivered after the next start" in logs
