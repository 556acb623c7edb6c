"""What a long-running ingester keeps in memory of the state topic: what the topic still holds, no more."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from streams.ingest.service import Ingester
from streams.settings import IngestSettings, KafkaSettings, TopicSettings
from streams.worker.metrics import IngestMetrics

DAY = 86400.0


def ingester(retention_days: float) -> Ingester:
    return Ingester(
        KafkaSettings(),
        TopicSettings(),
        IngestSettings(state_retention_days=retention_days),
        [],
        IngestMetrics(CollectorRegistry()),
        group="g",
    )


def test_prune_forgets_the_stories_the_state_topic_has_deleted_and_keeps_the_rest() -> None:
    ing = ingester(retention_days=30)
    now = time.time()
    ing.seen = {"old": now - 31 * DAY, "edge": now - 29.9 * DAY, "refreshed": now - 16 * DAY, "new": now}
    ing.parked = {"over": time.monotonic() - 1, "waiting": time.monotonic() + 3600}
    ing.prune(now)
    assert set(ing.seen) == {"edge", "refreshed", "new"}
    assert set(ing.parked) == {"waiting"}
    assert ing.metrics.registry.get_sample_value("finmon_ingest_state_stories") == 3
