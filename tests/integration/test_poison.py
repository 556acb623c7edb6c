"""Poison mixed into good documents, through one worker process on Apache Kafka: every input ends on
news.scored or news.dlq exactly once, no good document is lost beside a bad one, the worker lives.

The poison is the review's cases (a lone surrogate, NaN, deep nesting in an unknown field, 800 KB of
broken JSON, 21 KB of an everyday-word company name, 5,000 tickers, 120 KB of cashtags, bytes that
are not UTF-8, integers JSON parsers disagree on) and what hypothesis makes of unknown fields.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adversarial import adversarial_bodies
from tests.integration.conftest import Pipeline, encode, good_documents, stop

pytestmark = pytest.mark.integration
KB = 1024


def now() -> str:
    return datetime.now(UTC).isoformat()


def raw(doc: dict[str, Any], escaped: bool = True) -> bytes:
    """JSON text as a careless producer writes it: NaN allowed, surrogates escaped or raw."""
    text = json.dumps(doc, allow_nan=True, ensure_ascii=escaped)
    return text.encode("utf-8", "surrogatepass")


def poison(n: int) -> dict[str, bytes]:
    base = {"published_at": now(), "source": "poison", "title": "bad fed"}
    deep: Any = "bottom"
    for _ in range(900):
        deep = [deep]
    return {
        "surrogate in an unknown field": raw({**base, "id": f"p{n}-1", "note": "\ud800"}),
        "raw surrogate in the title": raw({**base, "id": f"p{n}-2", "title": "bad \ud800 fed"}, escaped=False),
        "NaN in an unknown field": raw({**base, "id": f"p{n}-3", "ratio": float("nan")}),
        "900-deep nesting in an unknown field": raw({**base, "id": f"p{n}-4", "tree": deep}),
        "800 KB of broken JSON": b'{"id": "p' + str(n).encode() + b'-5", "title": "' + b"x" * (800 * KB),
        "21 KB of an everyday-word company name": raw({**base, "id": f"p{n}-6", "body": "Target " * 3000}),
        "5,000 tickers": raw({**base, "id": f"p{n}-7", "tickers": [f"T{i}" for i in range(5000)]}),
        "120 KB of cashtags": raw({**base, "id": f"p{n}-8", "body": "$TSLA " * 20_000}),
        "bytes that are not UTF-8": b'{"id": "p' + str(n).encode() + b'-9", "title": "caf\xe9 \xff"}',
        "an integer beyond 64 bits": raw({**base, "id": f"p{n}-10", "big": 2**80}),
    }


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
    | st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028", "😀"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


def wait_outcomes(pipeline: Pipeline, expected: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    deadline = time.monotonic() + 120
    scored: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        scored = pipeline.consume("scored", lambda r: False, timeout=2)
        dead = pipeline.consume("dlq", lambda r: False, timeout=2)
        if len(scored) + len(dead) >= expected:
            break
    return scored, dead


def test_poison_mixed_into_good_documents_ends_scored_or_dead_lettered_exactly(pipeline: Pipeline) -> None:
    pipeline.extra_env.update({"FINMON_STREAM__BATCH_MAX": "32", "FINMON_ALERTS__ENABLED": "false"})
    worker = pipeline.start_worker()
    sent: list[tuple[bytes | None, bytes]] = []
    rounds = [0]
    try:
        pipeline.wait_ready(worker)

        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(unknown=st.lists(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3), min_size=3, max_size=8))
        def round_of(unknown: list[dict[str, Any]]) -> None:
            n = rounds[0]
            rounds[0] += 1
            good = good_documents(40, start=1000 * n)
            bad = list(poison(n).values())
            generated = [raw({**extra, **good_documents(1, start=1000 * n + 500 + i)[0], "id": f"g{n}-{i}"})
                         for i, extra in enumerate(unknown)]  # fmt: skip
            mixed = [encode(d) for d in good]
            for i, value in enumerate(bad + generated):  # poison spread through the good ones
                mixed.insert(1 + (i * 7) % len(mixed), (None, value))
            pipeline.produce(mixed)
            sent.extend(mixed)
            scored, dead = wait_outcomes(pipeline, len(sent))
            assert len(scored) + len(dead) == len(sent), "every input scored or dead-lettered, exactly once"
            assert {d["id"] for d in good} <= {r["id"] for r in scored}, "no good document lost beside poison"
            assert worker.poll() is None, "the worker lives"

        round_of()
        scored, dead = wait_outcomes(pipeline, len(sent))
        offsets = sorted([r["source_offset"] for r in dead])
        assert len(offsets) == len(set(offsets))
        reasons = {r["reason"] for r in dead}
        assert {"invalid_utf8", "invalid_json", "schema"} <= reasons, reasons
        assert all(len(json.dumps(r)) < 1_000_000 for r in dead)
        for record in scored:  # strict JSON: no NaN or Infinity, which a strict reader refuses
            json.dumps(record, allow_nan=False)
        metrics = pipeline.metrics()
        dead_total = sum(
            float(v) for v in re.findall(r"^finmon_documents_dead_lettered_total\{.*\} (\S+)", metrics, re.M)
        )
        assert dead_total == len(dead)
        print(f"poison: {len(sent)} in, {len(scored)} scored, {len(dead)} dead-lettered ({sorted(reasons)})")
    finally:
        stop(worker)


def test_a_batch_of_100k_character_bodies_is_scored_long_before_the_poll_interval(pipeline: Pipeline) -> None:
    pipeline.extra_env.update({"FINMON_STREAM__BATCH_MAX": "64", "FINMON_ALERTS__ENABLED": "false"})
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        rebalances = re.compile(r"^finmon_rebalances_total (\S+)", re.M)
        before = rebalances.search(pipeline.metrics())
        docs = [
            {"id": f"adv-{i}-{copy}", "published_at": now(), "source": "test", "title": "bad fed", "body": body}
            for i, body in enumerate(adversarial_bodies().values())
            for copy in range(4)
        ]
        began = time.monotonic()
        pipeline.produce([encode(d) for d in docs])
        scored = pipeline.consume("scored", lambda r: len(r) >= len(docs), timeout=60)
        took = time.monotonic() - began
        assert {r["id"] for r in scored} == {d["id"] for d in docs}
        assert took < 30, f"{len(docs)} adversarial documents took {took:.1f} s (the poll interval is 300 s)"
        after = rebalances.search(pipeline.metrics())
        assert before and after and before.group(1) == after.group(1), "the group never rebalanced"
        assert all(len(r["entities"]) <= 16 and len(r["tickers"]) <= 16 for r in scored)
    finally:
        stop(worker)


def test_a_record_the_cluster_refuses_is_dead_lettered_alone(pipeline: Pipeline) -> None:
    """news.scored accepts records of at most 4 KB: a scored record above that is refused by the broker
    itself (not by finmon's own size check), and that document alone goes to news.dlq."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=pipeline.url)
    try:
        admin.create_topics([NewTopic(pipeline.topics["scored"], 1, 1, topic_configs={"max.message.bytes": "4096"})])
    finally:
        admin.close()
    pipeline.extra_env["FINMON_ALERTS__ENABLED"] = "false"
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        docs = good_documents(12)
        for doc in docs[3::4]:
            doc["notes"] = "n" * 6000  # kept on the scored record, which the broker then refuses
        pipeline.produce([encode(d) for d in docs])
        scored, dead = wait_outcomes(pipeline, len(docs))
        assert len(scored) + len(dead) == len(docs)
        assert {r["id"] for r in scored} == {d["id"] for d in docs if "notes" not in d}
        assert {r["reason"] for r in dead} == {"output_refused"}
        assert sorted(r["source_offset"] for r in dead) == [3, 7, 11]
        assert worker.poll() is None
    finally:
        stop(worker)
