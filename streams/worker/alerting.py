"""Alerting in the worker: closed windows -> spike detector -> alerts (a faust agent); alerts ->
webhooks or alerts.dlq (a lane per target, streams.worker.delivery)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import faust

from alerts.records import WindowStats
from alerts.settings import AlertSettings
from alerts.spike import SpikeDetector
from streams.core.records import DeadLetter, Trend
from streams.core.scoring import dead_letter_bytes
from streams.settings import KafkaSettings, StreamSettings, TopicSettings
from streams.worker.delivery import delivery_service
from streams.worker.metrics import WorkerMetrics
from streams.worker.stage import send_all

T = TypeVar("T")


def window_stats(record: Trend, end_seconds: float) -> WindowStats:
    """The detector's view of a closed trend window: unique counts, so reposts count once."""
    return WindowStats(
        record.scope,
        record.key,
        record.window_start,
        record.window_end,
        record.unique_counts.negative,
        record.unique_total,
        tuple(h.model_dump() for h in record.headlines),
        record.top_tickers,
        record.model_version,
        end_seconds,
    )


async def decoded(decode: Callable[[bytes], T], event: Any, letters: Any, metrics: WorkerMetrics) -> T | None:
    """The record an event holds, or None once it is dead-lettered (news.dlq, with its reason)."""
    message = event.message
    try:
        return decode(event.value)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        letter = DeadLetter("schema", f"not a {decode.__qualname__.split('.')[0]} record: {exc}", event.value or b"",
                            message.topic, message.partition, message.offset, message.key)  # fmt: skip
        await (await letters.send(key=message.key, value=dead_letter_bytes(letter)))
        metrics.dead_letters.labels(reason="schema").inc()
        return None


def add_detection(
    app: faust.App,
    topics: TopicSettings,
    settings: AlertSettings,
    window_name: str,
    metrics: WorkerMetrics,
) -> SpikeDetector:
    """Judge each closed window of ``window_name`` once, in order per key; produce alerts."""
    trends = app.topic(topics.trends, key_serializer="raw", value_serializer="raw")
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    store = app.Table("detector-state", default=None, partitions=topics.partitions, key_type=str)
    detector = SpikeDetector(settings.detector(), store)

    letters = app.topic(topics.dlq, key_serializer="raw", value_serializer="raw")

    @app.agent(trends)
    async def detect(records: faust.StreamT) -> None:
        async for event in records.events():
            record = await decoded(Trend.decode, event, letters, metrics)
            if record is None or not record.final or record.window != window_name:
                continue
            end = faust.utils.iso8601.parse(record.window_end).timestamp()
            produced = detector.observe(window_stats(record, end))
            await send_all(alerts.send(key=a.alert_id.encode(), value=a.encode()) for a in produced)
            for alert in produced:
                metrics.alerts.labels(status=alert.status, scope=alert.scope).inc()

    return detector


def add_delivery(
    app: faust.App,
    kafka: KafkaSettings,
    stream: StreamSettings,
    topics: TopicSettings,
    settings: AlertSettings,
    metrics: WorkerMetrics,
) -> faust.App:
    """Deliver the alerts topic to every target, a lane each (streams.worker.delivery), beside the
    app's own work; ``finmon alerts`` runs an app that does only this (and serves /metrics)."""
    service = delivery_service(kafka, stream, topics, settings, metrics, loop=app.loop, beacon=app.beacon)
    app._extra_services.append(service)  # type: ignore[arg-type]  # an instance: started with the app
    return app
