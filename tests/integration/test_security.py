"""finmon against Apache Kafka brokers that ask for TLS, SASL/SCRAM-SHA-512 and ACLs.

A throwaway CA and broker certificates are made here with openssl; SCRAM users are created when
the broker's storage is formatted; ACLs are set with kafka-python as the brokers' admin user.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import TopicAuthorizationFailedError

from streams.cluster.acls import Grant, required_grants
from streams.settings import StreamSettings, TopicSettings
from tests.integration.conftest import Pipeline, Receiver, encode, good_documents, make_alert, stop, wait_for
from tests.kafka import ADMIN_PASSWORD, ADMIN_USER, SCRAM, KafkaCluster, Security, free_port
from tests.tls import Authority, make_authority, make_certificate

pytestmark = [pytest.mark.integration, pytest.mark.security]
FINMON_PASSWORD, INTRUDER_PASSWORD = "finmon-pw-5e2a", "intruder-pw-77c1"
LOOPBACK = ["localhost", "127.0.0.1"]


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return make_authority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_cluster(authority: Authority, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    folder = tmp_path_factory.mktemp("tls")
    keystore = make_certificate(authority, folder / "certs", "broker", LOOPBACK)
    with KafkaCluster(folder / "kafka", security=Security("SSL", keystore)) as running:
        yield running


@pytest.fixture(scope="module")
def acl_cluster(authority: Authority, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    folder = tmp_path_factory.mktemp("sasl")
    keystore = make_certificate(authority, folder / "certs", "broker", LOOPBACK)
    users = (("finmon", FINMON_PASSWORD), ("intruder", INTRUDER_PASSWORD))
    with KafkaCluster(folder / "kafka", security=Security("SASL_SSL", keystore, users, acls=True)) as running:
        yield running


def client(authority: Authority, user: str | None = None, password: str | None = None) -> dict[str, Any]:
    """kafka-python options for a TLS client, logged in as ``user`` when given."""
    options: dict[str, Any] = {"ssl_context": ssl.create_default_context(cafile=str(authority.cert))}
    if user is None:
        return {**options, "security_protocol": "SSL"}
    return {
        **options,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": SCRAM,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }


def secured(cluster: KafkaCluster, authority: Authority, model: Path, folder: Path, user: str | None) -> Pipeline:
    """A pipeline whose worker connects as finmon would in production; the test's own reads and
    writes go through a client of their own (the admin user where ACLs are on)."""
    env = {
        "FINMON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL" if user else "SSL",
        "FINMON_KAFKA__SSL_CAFILE": str(authority.cert),
    }
    if user:
        env.update(
            {
                "FINMON_KAFKA__SASL_MECHANISM": SCRAM,
                "FINMON_KAFKA__SASL_USERNAME": user,
                "FINMON_KAFKA__SASL_PASSWORD": FINMON_PASSWORD,
            }
        )
    own = client(authority, ADMIN_USER, ADMIN_PASSWORD) if user else client(authority)
    return Pipeline(cluster.url, f"s{uuid.uuid4().hex[:8]}", folder, model, free_port(), env, own)


def finmon(pipeline: Pipeline, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "monitor.cli", *args]
    return subprocess.run(command, env=pipeline.env(), capture_output=True, text=True, timeout=timeout)


def settings_of(pipeline: Pipeline) -> tuple[TopicSettings, StreamSettings]:
    names = {k: v for k, v in pipeline.topics.items()}
    return TopicSettings(**names), StreamSettings(app_id=pipeline.name)


def grant(cluster: KafkaCluster, authority: Authority, principal: str, grants: list[Grant]) -> None:
    types = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    patterns = {"literal": ACLResourcePatternType.LITERAL, "prefixed": ACLResourcePatternType.PREFIXED}
    acls = [
        ACL(
            principal,
            "*",
            ACLOperation[g.operation.upper()],
            ACLPermissionType.ALLOW,
            ResourcePattern(types[g.resource], g.name, patterns[g.pattern]),
        )
        for g in grants
    ]
    admin = KafkaAdminClient(bootstrap_servers=cluster.url, **client(authority, ADMIN_USER, ADMIN_PASSWORD))
    try:
        result = admin.create_acls(acls)
        assert not result["failed"], result["failed"]
    finally:
        admin.close()


def committed_nothing(pipeline: Pipeline) -> bool:
    consumer = KafkaConsumer(bootstrap_servers=pipeline.url, group_id=pipeline.name, **pipeline.client)
    try:
        partitions = consumer.partitions_for_topic(pipeline.topics["news"]) or {0}
        return all(consumer.committed(TopicPartition(pipeline.topics["news"], p)) is None for p in partitions)
    finally:
        consumer.close()


def test_over_tls_the_worker_feed_rescore_and_dashboard_connect(
    tls_cluster: KafkaCluster, authority: Authority, tiny_model: Path, tmp_path: Path
) -> None:
    pipeline = secured(tls_cluster, authority, tiny_model, tmp_path, user=None)
    worker = pipeline.start_worker()
    dashboard = None
    try:
        pipeline.wait_ready(worker)
        dashboard = pipeline.start_dashboard()
        fed = finmon(pipeline, "feed", "--count", "30", "--rate", "200")
        assert fed.returncode == 0 and "sent 30" in fed.stdout, fed.stderr
        scored = pipeline.consume("scored", lambda r: len(r) >= 30)
        assert len(scored) == 30

        def shown() -> int:
            with urllib.request.urlopen(f"http://127.0.0.1:{pipeline.dashboard_port}/api/snapshot", timeout=2) as page:
                return int(json.loads(page.read())["scored_total"])

        wait_for(lambda: shown() >= 30, "the dashboard read the scored news over TLS", 60)
    finally:
        stop(worker)
        if dashboard is not None:
            stop(dashboard)
    out = tmp_path / "rescored.jsonl"
    rescored = finmon(pipeline, "rescore", "--topic", pipeline.topics["news"], "--output", str(out), "--no-progress")
    assert rescored.returncode == 0, rescored.stderr
    assert len(out.read_text().splitlines()) == 30


def test_a_wrong_ca_is_refused_in_one_line_before_anything_is_consumed(
    tls_cluster: KafkaCluster, authority: Authority, tiny_model: Path, tmp_path: Path
) -> None:
    pipeline = secured(tls_cluster, authority, tiny_model, tmp_path, user=None)
    pipeline.produce([encode(d) for d in good_documents(3)])
    stranger = make_authority(tmp_path / "other-ca", "some-other-ca")
    pipeline.extra_env["FINMON_KAFKA__SSL_CAFILE"] = str(stranger.cert)
    rescore = ["rescore", "--topic", pipeline.topics["news"], "--output", str(tmp_path / "out.jsonl")]
    for command in (["worker"], ["dashboard"], ["feed", "--count", "1"], rescore):
        result = finmon(pipeline, *command)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("finmon: error: TLS:"), result.stderr
        assert "does not verify" in result.stderr and "unable to get local issuer certificate" in result.stderr
    assert committed_nothing(pipeline), "nothing was consumed"


def test_a_certificate_for_another_host_is_refused_in_one_line(
    authority: Authority, tiny_model: Path, tmp_path: Path
) -> None:
    keystore = make_certificate(authority, tmp_path / "certs", "elsewhere", ["elsewhere.test"])
    with KafkaCluster(tmp_path / "kafka", security=Security("SSL", keystore)) as elsewhere:
        pipeline = secured(elsewhere, authority, tiny_model, tmp_path, user=None)
        result = finmon(pipeline, "worker")
    assert result.returncode == 2, result.stderr[-2000:]
    assert (
        result.stderr.count("\n") == 1
        and "TLS:" in result.stderr
        and "mismatch, certificate is not valid for" in result.stderr
    )


def test_with_only_the_listed_acls_finmon_runs_the_whole_pipeline_over_scram(
    acl_cluster: KafkaCluster, authority: Authority, tiny_model: Path, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        pipeline = secured(acl_cluster, authority, tiny_model, tmp_path, user="finmon")
        pipeline.extra_env["FINMON_ALERTS__TARGETS"] = json.dumps([{"url": receiver.url, "name": "desk"}])
        grant(acl_cluster, authority, "User:finmon", required_grants(*settings_of(pipeline)))
        worker = pipeline.start_worker()
        try:
            pipeline.wait_ready(worker, timeout=120)
            docs = good_documents(20)
            pipeline.produce([encode(d) for d in docs] + [(None, b"{not json")])
            scored = pipeline.consume("scored", lambda r: len(r) >= 20)
            assert {r["id"] for r in scored} == {d["id"] for d in docs}
            assert pipeline.consume("dlq", lambda r: len(r) >= 1)[0]["reason"] == "invalid_json"
            assert pipeline.consume("trends", lambda r: len(r) >= 1), "windows were written"
            pipeline.produce([(b"acl-1", json.dumps(make_alert("acl-1")).encode())], topic="alerts")
            assert receiver.wait_for(lambda r: any(x["body"]["alert_id"] == "acl-1" for x in r), timeout=60)
            metrics = pipeline.metrics()
            assert worker.poll() is None
        finally:
            stop(worker)
    shown = finmon(pipeline, "config", "show")
    log = (pipeline.folder / "worker.log").read_text()
    for text in (log, metrics, shown.stdout + shown.stderr):
        assert FINMON_PASSWORD not in text
    assert json.loads(shown.stdout)["kafka"]["sasl_password"] == "**********"


def test_a_wrong_password_is_refused_in_one_line(
    acl_cluster: KafkaCluster, authority: Authority, tiny_model: Path, tmp_path: Path
) -> None:
    pipeline = secured(acl_cluster, authority, tiny_model, tmp_path, user="finmon")
    pipeline.extra_env["FINMON_KAFKA__SASL_PASSWORD"] = "not-the-password-31"
    result = finmon(pipeline, "worker", timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("finmon: error: SASL:"), result.stderr
    assert "'finmon'" in result.stderr and "not-the-password-31" not in result.stderr + result.stdout


def test_a_principal_without_write_on_alerts_cannot_inject_an_alert(
    acl_cluster: KafkaCluster, authority: Authority, tiny_model: Path, tmp_path: Path
) -> None:
    pipeline = secured(acl_cluster, authority, tiny_model, tmp_path, user="finmon")
    topics, _ = settings_of(pipeline)
    pipeline.produce([(b"real", json.dumps(make_alert("real")).encode())], topic="alerts")  # the topic exists
    grant(acl_cluster, authority, "User:intruder", [Grant("topic", topics.alerts, "literal", "Describe")])
    producer = KafkaProducer(
        bootstrap_servers=acl_cluster.url,
        max_block_ms=10_000,
        enable_idempotence=False,  # else the refusal comes earlier, for the producer id, not for the topic
        **client(authority, "intruder", INTRUDER_PASSWORD),
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topics.alerts, json.dumps(make_alert("fake")).encode()).get(timeout=30)
    finally:
        producer.close()


def test_a_missing_acl_stops_the_worker_with_the_right_it_lacks(
    acl_cluster: KafkaCluster, authority: Authority, tiny_model: Path, tmp_path: Path
) -> None:
    pipeline = secured(acl_cluster, authority, tiny_model, tmp_path, user="finmon")
    topics, stream = settings_of(pipeline)
    lacking = Grant("topic", topics.scored, "literal", "Write")
    grant(acl_cluster, authority, "User:finmon", [g for g in required_grants(topics, stream) if g != lacking])
    pipeline.produce([encode(d) for d in good_documents(3)])
    result = finmon(pipeline, "worker", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1, result.stderr
    assert re.search(rf"Kafka ACLs: finmon lacks Write on topic {re.escape(topics.scored)}\b", result.stderr)
    assert committed_nothing(pipeline), "nothing was consumed"
