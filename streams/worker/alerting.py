"""Faust wiring of alerting: closed windows -> spike detector -> alerts -> webhooks (or alerts.dlq)."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import faust

from alerts.records import Alert, AlertDeadLetter, DeliveryFailure, WindowStats
from alerts.settings import AlertSettings
from alerts.spike import SpikeDetector
from alerts.webhook import RetryPolicy, deliver
from streams.core.records import Trend
from streams.core.windows import SEP
from streams.settings import TopicSettings
from streams.worker.metrics import WorkerMetrics
from streams.worker.stage import send_all


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

    @app.agent(trends)
    async def detect(records: faust.StreamT) -> None:
        async for value in records:
            record = Trend.decode(value)
            if not record.final or record.window != window_name:
                continue
            end = faust.utils.iso8601.parse(record.window_end).timestamp()
            produced = detector.observe(window_stats(record, end))
            await send_all(alerts.send(key=a.alert_id.encode(), value=a.encode()) for a in produced)
            for alert in produced:
                metrics.alerts.labels(status=alert.status, scope=alert.scope).inc()

    return detector


def add_delivery(app: faust.App, topics: TopicSettings, settings: AlertSettings, metrics: WorkerMetrics) -> None:
    """Deliver each alert to every target; the offset commits only after all delivered or dead-lettered."""
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    dead = app.topic(topics.alerts_dlq, key_serializer="raw", value_serializer="raw")
    policy = RetryPolicy(settings.max_attempts, settings.base_delay, settings.max_delay)
    receivers = settings.targets
    metrics.delivery_targets([t.label for t in receivers])
    rng = random.Random()

    async def deliver_all(alert: Alert, session: aiohttp.ClientSession) -> list[DeliveryFailure]:
        results = await asyncio.gather(*(deliver(alert, t, session, policy, rng) for t in receivers))
        for target, result in zip(receivers, results, strict=True):
            metrics.deliveries.labels(target=target.label, outcome=result.outcome).inc()
            metrics.delivery_seconds.observe(result.seconds)
            metrics.delivery_retries.labels(target=target.label).inc(len(result.retries))
        return [
            DeliveryFailure(target=t.label, outcome=r.outcome, detail=r.detail, attempts=r.attempts)
            for t, r in zip(receivers, results, strict=True)
            if r.outcome != "delivered"
        ]

    @app.agent(alerts)
    async def deliver_alerts(records: faust.StreamT) -> None:
        async with aiohttp.ClientSession() as session:
            async for value in records:
                alert = Alert.decode(value)
                failures = await deliver_all(alert, session)
                if failures:
                    letter = AlertDeadLetter(alert=alert, failures=tuple(failures))
                    key = f"{alert.alert_id}{SEP}{alert.status}".encode()
                    await (await dead.send(key=key, value=letter.encode()))
                    metrics.alerts_dead.inc()


def create_delivery_app(
    app: faust.App, topics: TopicSettings, settings: AlertSettings, metrics: WorkerMetrics
) -> faust.App:
    """An app that only delivers alerts (``finmon alerts``), with /metrics."""
    from streams.worker.health import serve_metrics

    add_delivery(app, topics, settings, metrics)
    serve_metrics(app, metrics)
    return app
