"""Two workers in one consumer group on Apache Kafka: shared partitions, then a takeover."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from collections import Counter

import pytest

from tests.integration.conftest import Pipeline, good_documents, held, stop, wait_for
from tests.kafka import free_port

pytestmark = pytest.mark.integration


def test_two_workers_share_partitions_and_one_takes_over_when_the_other_dies(pipeline: Pipeline) -> None:
    pipeline.extra_env["FINMON_TOPICS__PARTITIONS"] = "4"
    pipeline.extra_env["FINMON_ALERTS__ENABLED"] = "false"
    other_folder = pipeline.folder / "second"
    other_folder.mkdir()
    second = dataclasses.replace(pipeline, folder=other_folder, web_port=free_port())
    first_worker = pipeline.start_worker()
    second_worker = None
    try:
        pipeline.wait_ready(first_worker)
        second_worker = second.start_worker()
        second.wait_ready(second_worker)
        wait_for(
            lambda: bool(held(pipeline)) and bool(held(second)) and held(pipeline) | held(second) == {0, 1, 2, 3},
            f"the two workers never shared the 4 partitions: {held(pipeline)} {held(second)}",
        )
        assert not held(pipeline) & held(second)

        docs = good_documents(200)
        pipeline.produce([(d["id"].encode(), json.dumps(d).encode()) for d in docs])
        scored = pipeline.consume("scored", lambda r: len(r) >= 200, timeout=90)
        time.sleep(2)
        scored = pipeline.consume("scored", lambda r: len(r) > 200, timeout=3)
        counts = Counter(r["id"] for r in scored)
        assert set(counts) == {d["id"] for d in docs}
        assert max(counts.values()) == 1, "no document is scored twice when nothing fails"

        stop(second_worker, signal.SIGKILL)
        more = good_documents(200, start=200)
        pipeline.produce([(d["id"].encode(), json.dumps(d).encode()) for d in more])
        wait_for(lambda: held(pipeline) == {0, 1, 2, 3}, "the surviving worker took every partition")
        wanted = {d["id"] for d in docs + more}
        scored = pipeline.consume("scored", lambda r: wanted <= {x["id"] for x in r}, timeout=120)
        missing = wanted - {r["id"] for r in scored}
        log = (pipeline.folder / "worker.log").read_text()[-4000:]
        assert not missing, f"nothing is lost when a worker dies: {len(missing)} missing; survivor's log:\n{log}"
    finally:
        stop(first_worker)
        if second_worker is not None:
            stop(second_worker)
