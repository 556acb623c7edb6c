"""Real services for integration tests: an Apache Kafka broker per session, finmon workers as processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
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
        }

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FINMON_KAFKA__BOOTSTRAP_SERVERS": self.url,
                "FINMON_MODEL__PATH": str(self.model),
                "FINMON_STREAM__APP_ID": self.name,
                "FINMON_STREAM__SESSION_TIMEOUT": "6",
                "FINMON_STREAM__HEARTBEAT_INTERVAL": "2",
                "FINMON_STREAM__WEB_PORT": str(self.web_port),
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

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, (self.folder / "worker.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError("worker did not become ready:\n" + (self.folder / "worker.log").read_text()[-3000:])

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=2) as response:
            return str(response.read().decode())

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
