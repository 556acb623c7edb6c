"""Real services for integration tests: an Apache Kafka broker per session, finmon workers as processes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.kafka import KafkaCluster, free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Apache Kafka node on free loopback ports for the whole session, stopped by its PID."""
    with KafkaCluster(tmp_path_factory.mktemp("kafka")) as running:
        yield running.url


@dataclass
class Pipeline:
    """Unique topic names and settings for one test, and helpers to drive a worker process."""

    url: str
    name: str
    folder: Path
    model: Path
    web_port: int
    extra_env: dict[str, str]
    client: dict[str, Any] = field(default_factory=dict)  # kafka-python options: TLS, SASL
    dashboard_port: int = field(default_factory=free_port)

    @property
    def topics(self) -> dict[str, str]:
        return {
            "news": f"{self.name}.news",
            "scored": f"{self.name}.scored",
            "dlq": f"{self.name}.dlq",
            "trends": f"{self.name}.trends",
            "alerts": f"{self.name}.alerts",
            "alerts_dlq": f"{self.name}.alerts-dlq",
            "feedback": f"{self.name}.feedback",
            "ingest_state": f"{self.name}.ingest-state",
        }

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FINMON_KAFKA__BOOTSTRAP_SERVERS": self.url,
                "FINMON_MODEL__PATH": str(self.model),
                "FINMON_MODEL__MULTILINGUAL_PATH": "",  # one tiny model reads everything unless a test routes
                "FINMON_STREAM__APP_ID": self.name,
                "FINMON_STREAM__SESSION_TIMEOUT": "6",
                "FINMON_STREAM__HEARTBEAT_INTERVAL": "2",
                "FINMON_STREAM__WEB_PORT": str(self.web_port),
                "FINMON_WEB__PORT": str(self.dashboard_port),
                "FINMON_STREAM__DATA_DIR": str(self.folder / "state"),
                "FINMON_WINDOWS__EMIT_INTERVAL": "1",
                **{f"FINMON_TOPICS__{k.upper()}": v for k, v in self.topics.items()},
                **self.extra_env,
            }
        )
        return env

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.folder / "worker.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "worker"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self, command: str, log: str | None = None) -> subprocess.Popen[bytes]:
        """``finmon COMMAND`` in a session of its own, its output in FOLDER/LOG (COMMAND.log)."""
        output = (self.folder / (log or f"{command}.log")).open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", command],
            env=self.env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_dashboard(self, verbose: bool = False) -> subprocess.Popen[bytes]:
        """``finmon dashboard`` on ``dashboard_port``, ready once its /health answers."""
        log = (self.folder / "dashboard.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", *(["-v"] if verbose else []), "dashboard"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(process, port=self.dashboard_port, log="dashboard.log")
        return process

    def wait_ready(
        self, process: subprocess.Popen[bytes], timeout: float = 60.0, port: int | None = None, log: str = "worker.log"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, (self.folder / log).read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port or self.web_port}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{log} did not become ready:\n" + (self.folder / log).read_text()[-3000:])

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=2) as response:
            return str(response.read().decode())

    def delivers_alerts(self) -> bool:
        """Whether the process on ``web_port`` delivers some partition of the alerts topic (its lanes started)."""
        try:
            return re.search(r"^finmon_alert_delivery_partitions\{.*\} [1-9]", self.metrics(), re.MULTILINE) is not None
        except OSError:
            return False

    def produce(self, messages: list[tuple[bytes | None, bytes]], topic: str = "news") -> None:
        """Write to ``topic`` (a key of ``topics`` or a full name) with kafka-python, every write acknowledged."""
        producer = KafkaProducer(
            bootstrap_servers=self.url, acks="all", max_request_size=4_000_000, linger_ms=5, **self.client
        )
        try:
            futures = [producer.send(self.topics.get(topic, topic), value, key=key) for key, value in messages]
            producer.flush()
            for future in futures:
                future.get(timeout=60)
        finally:
            producer.close()

    def consume(self, topic: str, until: Any, timeout: float = 60.0) -> list[Any]:
        """Read ``topic`` (a key of ``topics`` or a full name) from the start until ``until(records)`` holds."""
        name = self.topics.get(topic, topic)
        consumer = KafkaConsumer(
            bootstrap_servers=self.url,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **self.client,
        )
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            partitions: set[int] = set()
            while not partitions and time.monotonic() < deadline:
                partitions = consumer.partitions_for_topic(name) or set()
                if not partitions:
                    time.sleep(0.3)  # the worker creates its output topics as it starts
            consumer.assign([TopicPartition(name, p) for p in sorted(partitions)])
            consumer.seek_to_beginning()
            while time.monotonic() < deadline and not until(records):
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(json.loads(m.value) for m in batch)
        finally:
            consumer.close()
        return records


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process group a fixture started (start_new_session=True), then wait for it."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(20)
    except ProcessLookupError:  # not a group leader: signal the process itself
        process.send_signal(sig)
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


ALERTMANAGER_V4_KEYS = {
    "version",
    "groupKey",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
}


def make_alert(
    alert_id: str, status: str = "firing", scope: str = "topic", key: str = "Macro", **fields: Any
) -> dict[str, Any]:
    """An alert record as the detector writes it, for delivery tests."""
    return {
        "alert_id": alert_id,
        "status": status,
        "scope": scope,
        "key": key,
        "count": 20,
        "observed_negative_share": 0.9,
        "baseline_negative_share": 0.2,
        "severity": "warning",
        "window": {"start": "2026-11-24T09:00:00Z", "end": "2026-11-24T09:01:00Z"},
        "headlines": [],
        **fields,
    }


@pytest.fixture
def pipeline(broker: str, tiny_model: Path, tmp_path: Path) -> Pipeline:
    return Pipeline(broker, f"t{uuid.uuid4().hex[:8]}", tmp_path, tiny_model, free_port(), {})


def news_partitions(worker: Pipeline) -> set[int]:
    """The partitions of the news topic this worker holds, from its per-partition lag gauge."""
    topic = re.escape(worker.topics["news"])
    pattern = rf'^finmon_consumer_lag{{partition="(\d+)",topic="{topic}"}}'
    return {int(p) for p in re.findall(pattern, worker.metrics(), re.MULTILINE)}


def held(worker: Pipeline) -> set[int]:
    try:
        return news_partitions(worker)
    except OSError:
        return set()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(what)


class Receiver:
    """A real HTTP server on loopback in its own thread; records requests, can hang the first ones."""

    def __init__(self, hang_first: int = 0, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self.hang_first = hang_first
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {"headers": dict(request.headers), "body": json.loads(body), "raw": body, "at": time.time()}
        )
        if len(self.requests) <= self.hang_first:
            await asyncio.sleep(3600)
        return web.Response(status=200)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Receiver:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, condition: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self.requests):
                return True
            time.sleep(0.2)
        return False


class Stream:
    """Documents written at a steady rate from a thread, with fresh event times, until stopped."""

    def __init__(
        self,
        pipeline: Pipeline,
        per_tick: int = 4,
        tick: float = 0.25,
        first: list[tuple[str, bytes | None, bytes]] | None = None,
        each_tick: Callable[[Stream], list[tuple[str, bytes | None, bytes]]] | None = None,
    ) -> None:
        """``first``: (topic, key, value) records written before the stream; ``each_tick``: more, each tick."""
        self.pipeline, self.per_tick, self.tick = pipeline, per_tick, tick
        self.first, self.each_tick = first or [], each_tick
        self.sent: list[dict[str, Any]] = []
        self.failed: list[BaseException] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self.pipeline.url, acks="all", enable_idempotence=True, delivery_timeout_ms=300_000
        )
        topics = self.pipeline.topics
        futures = [producer.send(topics.get(t, t), value, key) for t, key, value in self.first]
        try:
            while not self.stopped.is_set():
                for doc in good_documents(self.per_tick, start=len(self.sent)):
                    futures.append(
                        producer.send(self.pipeline.topics["news"], json.dumps(doc).encode(), doc["id"].encode())
                    )
                    self.sent.append(doc)
                for t, key, value in self.each_tick(self) if self.each_tick else []:
                    futures.append(producer.send(topics.get(t, t), value, key))
                time.sleep(self.tick)
            producer.flush(timeout=300)
            for future in futures:
                try:
                    future.get(timeout=1)
                except Exception as exc:
                    self.failed.append(exc)
        finally:
            producer.close()

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(330)


SENTIMENT_WORDS = {"good": "positive", "bad": "negative", "flat": "neutral"}


TOPIC_WORDS = {
    "dividend": "Dividend",
    "oil": "Energy / Oil",
    "ipo": "IPO",
    "fed": "Fed / Central Banks",
    "": "General News / Opinion",
}


def good_documents(count: int, start: int = 0) -> list[dict[str, Any]]:
    """Documents whose labels the tiny model's words decide, so expectations are independent of it."""
    now = datetime.now(UTC)
    docs = []
    for i in range(start, start + count):
        word = list(SENTIMENT_WORDS)[i % 3]
        topic = list(TOPIC_WORDS)[i % 5]
        doc = {
            "id": f"doc-{i}",
            "published_at": (now - timedelta(seconds=i % 7)).isoformat(),
            "source": "test",
            "title": f"{word} {topic} w{i % 40}".replace("  ", " "),
            "body": "$ZZZ w1" if i % 4 == 0 else "",
            "tickers": ["acme"] if i % 2 == 0 else [],
            "desk": "unknown fields are kept",
        }
        docs.append(doc)
    return docs


def expected_windows(docs: list[dict[str, Any]], size: int = 60) -> dict[tuple[str, str, str], Counter[str]]:
    """Tumbling-window counts computed from the inputs alone (each id once)."""
    counts: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for doc in {d["id"]: d for d in docs}.values():
        words = doc["title"].split()
        sentiment = SENTIMENT_WORDS[words[0]]
        topic = next((TOPIC_WORDS[w] for w in words if w in TOPIC_WORDS and w), TOPIC_WORDS[""])
        moment = datetime.fromisoformat(doc["published_at"]).timestamp()
        start = datetime.fromtimestamp(int(moment // size) * size, UTC).isoformat(timespec="milliseconds")
        start = start.replace("+00:00", "Z")
        tickers = ["ACME"] * (doc["tickers"] == ["acme"]) + ["ZZZ"] * ("$ZZZ" in doc["body"])
        for scope, key in [("topic", topic)] + [("ticker", t) for t in tickers]:
            counts[(scope, key, start)][sentiment] += 1
    return counts


def windows_match(expected: dict[tuple[str, str, str], Counter[str]]) -> Any:
    def check(records: list[dict[str, Any]]) -> bool:
        latest = {}
        for r in records:
            if r["window"] == "60s":
                latest[(r["scope"], r["key"], r["window_start"])] = r
        return all(
            key in latest and {s: n for s, n in latest[key]["counts"].items() if n} == dict(counts)
            for key, counts in expected.items()
        )

    return check


def encode(doc: dict[str, Any]) -> tuple[bytes, bytes]:
    return doc["id"].encode(), json.dumps(doc).encode()


def feed_through_kills(
    pipeline: Pipeline, size: int, seed: int, pause: tuple[float, float], chunks: int = 4
) -> list[dict[str, Any]]:
    """Start a worker, write a chunk of documents, kill it with SIGKILL at a random point; the last
    worker of the series stops with SIGTERM. Returns every document written."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for number in range(chunks):
        chunk = good_documents(size, start=size * number)
        docs += chunk
        worker = pipeline.start_worker()
        try:
            pipeline.wait_ready(worker, timeout=120)
            pipeline.produce([encode(d) for d in chunk])
            time.sleep(rng.uniform(*pause))  # a random point: before, during or after the batch
        finally:
            stop(worker, signal.SIGKILL if number < chunks - 1 else signal.SIGTERM)
        assert worker.returncode is not None
    return docs
