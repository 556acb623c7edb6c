"""finmon on a three-node Apache Kafka cluster (replication 3, min.insync.replicas 2) while brokers die.

Inputs are written and outputs read with kafka-python, a client the worker does not use itself.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from tests.integration.conftest import (
    Pipeline,
    Receiver,
    Stream,
    feed_through_kills,
    good_documents,
    make_alert,
    stop,
    wait_for,
    windows_match,
)
from tests.integration.conftest import expected_windows as windows_of
from tests.kafka import KafkaCluster, free_port
from tests.tiny_model import build_slow_model

pytestmark = [pytest.mark.integration, pytest.mark.failover]
FAST_FENCING = {"broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "1000"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    with KafkaCluster(tmp_path_factory.mktemp("cluster"), size=3, properties=FAST_FENCING) as running:
        yield running


@pytest.fixture
def replicated(cluster: KafkaCluster, tiny_model: Path, tmp_path: Path) -> Pipeline:
    """A pipeline on the cluster: three partitions, three replicas, a grace that outlasts any outage here."""
    env = {
        "FINMON_TOPICS__PARTITIONS": "3",
        "FINMON_TOPICS__REPLICATION": "3",
        "FINMON_WINDOWS__GRACE_SECONDS": "240",
    }
    return Pipeline(cluster.url, f"f{uuid.uuid4().hex[:8]}", tmp_path, tiny_model, free_port(), env)


def leaders(url: str, topic: str) -> dict[int, int]:
    """partition -> node id of its leader (-1 while none)."""
    admin = KafkaAdminClient(bootstrap_servers=url)
    try:
        (described,) = admin.describe_topics([topic])
        return {p["partition_index"]: p["leader_id"] for p in described["partitions"]}
    finally:
        admin.close()


def lag_metric(pipeline: Pipeline) -> int | None:
    topic = re.escape(pipeline.topics["news"])
    try:
        found = re.findall(rf'^finmon_consumer_lag{{partition="\d+",topic="{topic}"}} (\S+)', pipeline.metrics(), re.M)
    except OSError:
        return None
    return int(sum(float(v) for v in found)) if found else None


def group_lag(pipeline: Pipeline) -> int | None:
    """End offsets minus the group's committed offsets, as an independent client reckons them
    (None while some partition has no committed offset: there is no such lag to compare yet)."""
    consumer = KafkaConsumer(bootstrap_servers=pipeline.url, group_id=pipeline.name, enable_auto_commit=False)
    try:
        topic = pipeline.topics["news"]
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(tps)
        committed = {tp: consumer.committed(tp) for tp in tps}
        if not tps or None in committed.values():
            return None
        return sum(ends[tp] - int(committed[tp] or 0) for tp in tps)
    finally:
        consumer.close()


def check_outputs(pipeline: Pipeline, docs: list[dict[str, Any]]) -> dict[str, int]:
    """Every input on news.scored, and final window counts equal to those computed from the inputs."""
    wanted = {d["id"] for d in docs}
    scored = pipeline.consume("scored", lambda r: wanted <= {x["id"] for x in r}, timeout=240)
    ids = [r["id"] for r in scored]
    log = pipeline.folder / "worker.log"
    tail = log.read_text(errors="replace")[-4000:] if log.is_file() else "(no worker log)"
    assert wanted <= set(ids), f"{len(wanted - set(ids))} inputs never scored; the worker's log ends:\n{tail}"
    expected = windows_of(docs)
    records = pipeline.consume("trends", windows_match(expected), timeout=300)
    latest = {(r["scope"], r["key"], r["window_start"]): r["counts"] for r in records if r["window"] == "60s"}
    wrong = {
        key: (dict(counts), latest.get(key))
        for key, counts in expected.items()
        if {s: n for s, n in (latest.get(key) or {}).items() if n} != dict(counts)
    }
    assert not wrong, f"window counts (expected, counted): {wrong}"
    return {"in": len(wanted), "out": len(ids), "duplicates": len(ids) - len(set(ids)), "window_errors": len(wrong)}


def test_the_leader_of_most_news_partitions_is_killed_mid_stream(cluster: KafkaCluster, replicated: Pipeline) -> None:
    with Receiver() as receiver:
        replicated.extra_env["FINMON_ALERTS__TARGETS"] = json.dumps([{"url": receiver.url, "name": "desk"}])
        replicated.extra_env["FINMON_ALERTS__BASE_DELAY"] = "0.2"
        worker = replicated.start_worker()
        try:
            replicated.wait_ready(worker, timeout=120)
            with Stream(replicated) as stream:
                wait_for(lambda: len(stream.sent) >= 60, "the stream started")
                by_partition = leaders(cluster.url, replicated.topics["news"])
                victim = max(set(by_partition.values()), key=list(by_partition.values()).count)
                cluster.kill(victim)
                replicated.produce([(b"fo-1", json.dumps(make_alert("fo-1")).encode())], topic="alerts")
                wait_for(lambda: -1 not in leaders(cluster.url, replicated.topics["news"]).values(), "a new leader")
                wait_for(lambda: len(stream.sent) >= 200, "the stream went on")
                cluster.restart([victim])
                wait_for(lambda: len(stream.sent) >= 280, "the stream went on after the restart")
            assert not stream.failed, stream.failed[:3]
            outcome = check_outputs(replicated, stream.sent)
            assert receiver.wait_for(lambda r: any(x["body"]["alert_id"] == "fo-1" for x in r), timeout=60)
            wait_for(lambda: lag_metric(replicated) == 0, "finmon_consumer_lag back to zero")
            assert worker.poll() is None, "the worker never exited"
            log = (replicated.folder / "worker.log").read_text()
            assert log.count("finmon worker: model") == 1, "the worker started once: no crash loop"
            print("leader failure:", outcome)
        finally:
            stop(worker)


def test_the_whole_cluster_restarts_mid_stream(cluster: KafkaCluster, replicated: Pipeline) -> None:
    worker = replicated.start_worker()
    try:
        replicated.wait_ready(worker, timeout=120)
        with Stream(replicated) as stream:
            wait_for(lambda: len(stream.sent) >= 60, "the stream started")
            before = replicated.consume("scored", lambda r: len(r) >= 40, timeout=60)
            cluster.stop()
            time.sleep(5)  # the outage itself: nothing to wait on while every broker is down
            cluster.restart([1, 2, 3])
            wait_for(lambda: len(stream.sent) >= 200, "the stream went on after the cluster came back")
        assert not stream.failed, stream.failed[:3]
        acknowledged = {r["id"] for r in before}
        after = {r["id"] for r in replicated.consume("scored", lambda r: acknowledged <= {x["id"] for x in r})}
        assert acknowledged <= after, "an output acknowledged before the outage was lost"
        check_outputs(replicated, stream.sent)
        assert worker.poll() is None, "the worker reconnected by itself"
    finally:
        stop(worker, signal.SIGKILL)
    # a new worker has only the changelogs to go by: its windows must still count every id once
    late = good_documents(30, start=5000)
    worker = replicated.start_worker()
    try:
        replicated.wait_ready(worker, timeout=120)
        replicated.produce([(d["id"].encode(), json.dumps(d).encode()) for d in late])
        print("whole-cluster restart:", check_outputs(replicated, stream.sent + late))
    finally:
        stop(worker)


def test_consumer_lag_is_the_lag_kafka_reports(replicated: Pipeline, tmp_path: Path) -> None:
    replicated.model = build_slow_model(tmp_path / "slow", matmuls=10)
    replicated.extra_env.update({"FINMON_STREAM__BATCH_MAX": "2", "FINMON_ALERTS__ENABLED": "false"})
    worker = replicated.start_worker()
    try:
        replicated.wait_ready(worker, timeout=120)
        docs = good_documents(40)
        replicated.produce([(d["id"].encode(), json.dumps(d).encode()) for d in docs])
        compared, earlier = 0, None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            high = group_lag(replicated)
            shown = lag_metric(replicated)
            low = group_lag(replicated)
            if high is not None and low is not None and shown is not None:
                # the lag only falls (nothing else writes); the worker learns of a commit when the broker
                # answers it, so its figure may trail the group's by the commit in flight, never by more
                ceiling = max(high, earlier if earlier is not None else high)
                assert low <= shown <= ceiling, (low, shown, high, earlier)
                compared += high > 0
                earlier = high
                if high == 0 and shown == 0:
                    break
        assert compared >= 2, "the worker was never seen behind with committed offsets"
        assert group_lag(replicated) == 0 and lag_metric(replicated) == 0, "both lags reach zero"
    finally:
        stop(worker)


def test_a_survivor_takes_over_and_keeps_expiring_window_state(replicated: Pipeline) -> None:
    replicated.extra_env.update(
        {
            "FINMON_WINDOWS__TUMBLING_SECONDS": "2",
            "FINMON_WINDOWS__HOPPING_SECONDS": "4",
            "FINMON_WINDOWS__HOPPING_STEP_SECONDS": "2",
            "FINMON_WINDOWS__GRACE_SECONDS": "1",
            "FINMON_WINDOWS__EMIT_INTERVAL": "0.5",
            "FINMON_ALERTS__ENABLED": "false",
        }
    )
    second = dataclasses.replace(replicated, web_port=free_port(), folder=replicated.folder / "second")
    second.folder.mkdir()
    first_worker, second_worker = replicated.start_worker(), second.start_worker()
    try:
        replicated.wait_ready(first_worker, timeout=120)
        second.wait_ready(second_worker, timeout=120)
        with Stream(replicated, per_tick=2, tick=0.5) as stream:
            wait_for(lambda: len(stream.sent) >= 40, "the stream started")
            stop(first_worker, signal.SIGKILL)
            wait_for(lambda: len(stream.sent) >= 120, "the stream went on")
        wanted = {d["id"] for d in stream.sent}
        scored = replicated.consume("scored", lambda r: wanted <= {x["id"] for x in r}, timeout=180)
        assert wanted <= {r["id"] for r in scored}, (
            "the survivor scored what the dead worker left:\n" + (second.folder / "worker.log").read_text()[-6000:]
        )

        def state_keys() -> float:
            found = re.search(r"^finmon_window_state_keys (\S+)", second.metrics(), re.M)
            return float(found.group(1)) if found else -1.0

        wait_for(lambda: state_keys() == 0, "the survivor expired the state of every partition it holds", 120)
        assert second_worker.poll() is None
    finally:
        stop(first_worker)
        stop(second_worker)


CLEANER = {
    "log.roll.ms": "2000",  # small segments: only closed segments are compacted
    "log.cleaner.backoff.ms": "500",
    "log.cleaner.min.cleanable.ratio": "0.01",
    "log.cleaner.min.compaction.lag.ms": "0",
    "log.cleaner.delete.retention.ms": "1000",  # tombstones themselves go soon after
}


def test_changelogs_are_compacted_and_expired_window_state_is_cleaned_up(tiny_model: Path, tmp_path: Path) -> None:
    with KafkaCluster(tmp_path / "kafka", properties=CLEANER) as own:
        pipeline = Pipeline(own.url, f"c{uuid.uuid4().hex[:8]}", tmp_path, tiny_model, free_port(), {})
        pipeline.extra_env.update(
            {
                "FINMON_WINDOWS__TUMBLING_SECONDS": "2",
                "FINMON_WINDOWS__HOPPING_SECONDS": "4",
                "FINMON_WINDOWS__HOPPING_STEP_SECONDS": "2",
                "FINMON_WINDOWS__GRACE_SECONDS": "1",
                "FINMON_ALERTS__ENABLED": "false",
            }
        )
        changelog = f"{pipeline.name}-windows-changelog"
        worker = pipeline.start_worker()
        try:
            pipeline.wait_ready(worker)
            with Stream(pipeline, per_tick=2, tick=0.25) as stream:
                wait_for(lambda: len(stream.sent) >= 120, "the stream ran")
            admin = KafkaAdminClient(bootstrap_servers=own.url)
            try:
                found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, changelog)])
                (configs,) = [by_name[changelog] for by_name in found.values()]  # only what differs from defaults
            finally:
                admin.close()
            assert configs["cleanup.policy"]["value"] == "compact"

            def state_keys() -> float:
                found = re.search(r"^finmon_window_state_keys (\S+)", pipeline.metrics(), re.M)
                return float(found.group(1)) if found else -1.0

            wait_for(lambda: state_keys() == 0, "the worker expired its window state", 120)
            # another document rolls the segment that holds the deletions, so the cleaner may take it
            time.sleep(2.5)  # the roll interval itself: a segment rolls only once it is that old
            pipeline.produce([(b"late", json.dumps(good_documents(1, start=9000)[0]).encode())])

            def cleaned() -> tuple[int, int, dict[bytes, bytes | None]]:
                consumer = KafkaConsumer(bootstrap_servers=own.url, enable_auto_commit=False)
                try:
                    tp = TopicPartition(changelog, 0)
                    consumer.assign([tp])
                    consumer.seek_to_beginning(tp)
                    end, held, last = consumer.end_offsets([tp])[tp], 0, {}
                    while consumer.position(tp) < end:
                        for record in consumer.poll(timeout_ms=500).get(tp, []):
                            held, last[record.key] = held + 1, record.value
                    return end, held, last
                finally:
                    consumer.close()

            def compacted() -> bool:
                end, held, last = cleaned()
                live = [k for k, v in last.items() if v is not None]
                return held < end // 2 and len(live) <= 4  # the late document's 3 buckets and 1 marker chunk

            wait_for(compacted, "the cleaner dropped expired window state from the changelog", 120)
            end, held, _ = cleaned()
            print(f"changelog: {end} records written, {held} kept after compaction")
        finally:
            stop(worker)


def test_exactly_once_leaves_each_id_once_on_news_scored_through_repeated_kills(pipeline: Pipeline) -> None:
    """faust's transactions (FINMON_STREAM__PROCESSING_GUARANTEE=exactly_once): SIGKILL the worker at
    random points; read committed, every input is on news.scored exactly once and windows are exact."""
    pipeline.extra_env.update(
        {
            "FINMON_STREAM__PROCESSING_GUARANTEE": "exactly_once",
            "FINMON_TOPICS__PARTITIONS": "3",
            "FINMON_WINDOWS__GRACE_SECONDS": "300",
            "FINMON_ALERTS__ENABLED": "false",
        }
    )
    docs = feed_through_kills(pipeline, size=40, seed=7, pause=(0.2, 2.0))
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker, timeout=120)
        outcome = check_outputs(pipeline, docs)  # reads committed records only
        assert outcome["duplicates"] == 0, outcome
        print("exactly-once through kills:", outcome)
    finally:
        stop(worker)
