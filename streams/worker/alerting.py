"""Faust wiring of alerting: closed windows -> spike detector -> alerts -> webhooks (or alerts.dlq)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aiohttp
import faust

from alerts.records import WindowStats
from alerts.settings import AlertSettings
from alerts.spike import SpikeDetector
from alerts.webhook import RetryPolicy, Target, deliver
from streams.core.records import dumps
from streams.core.windows import SEP
from streams.settings import TopicSettings
from streams.worker.metrics import WorkerMetrics


def window_stats(record: dict[str, Any], end_seconds: float) -> WindowStats:
    """The detector's view of a closed trend window: unique counts, so reposts count once."""
    unique = record.get("unique_counts") or record["counts"]
    total = int(record.get("unique_total", record["total"]))
    return WindowStats(
        record["scope"],
        record["key"],
        record["window_start"],
        record["window_end"],
        int(unique.get("negative", 0)),
        total,
        tuple(record.get("headlines", [])),
        tuple(record.get("top_tickers", [])),
        record.get("model_version"),
        end_seconds,
    )


def targets(settings: AlertSettings) -> list[Target]:
    return [
        Target(t.url, t.format, t.secret.get_secret_value() if t.secret else None, t.timeout, t.label)
        for t in settings.targets
    ]


def add_detection(
    app: faust.App,
    topics: TopicSettings,
    settings: AlertSettings,
    window_name: str,
    metrics: WorkerMetrics,
    model_version: str,
) -> SpikeDetector:
    """Judge each closed window of ``window_name`` once, in order per key; produce alerts."""
    trends = app.topic(topics.trends, key_serializer="raw", value_serializer="raw")
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    store = app.Table("detector-state", default=None, partitions=topics.partitions, key_type=str)
    detector = SpikeDetector(settings.detector(), store)

    @app.agent(trends)
    async def detect(records: faust.StreamT) -> None:
        async for value in records:
            record = json.loads(value)
            if not record.get("final") or record.get("window") != window_name:
                continue
            end = faust.utils.iso8601.parse(record["window_end"]).timestamp()
            stats = window_stats({**record, "model_version": model_version}, end)
            produced = detector.observe(stats)
            sent = [await alerts.send(key=str(a["alert_id"]).encode(), value=dumps(a)) for a in produced]
            await asyncio.gather(*sent)
            for alert in produced:
                metrics.alerts.labels(status=alert["status"], scope=alert["scope"]).inc()

    return detector


def add_delivery(app: faust.App, topics: TopicSettings, settings: AlertSettings, metrics: WorkerMetrics) -> None:
    """Deliver each alert to every target; the offset commits only after all delivered or dead-lettered."""
    alerts = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    dead = app.topic(topics.alerts_dlq, key_serializer="raw", value_serializer="raw")
    policy = RetryPolicy(settings.max_attempts, settings.base_delay, settings.max_delay)
    receivers = targets(settings)
    metrics.delivery_targets([t.name for t in receivers])
    rng = random.Random()

    @app.agent(alerts)
    async def deliver_alerts(records: faust.StreamT) -> None:
        async with aiohttp.ClientSession() as session:
            async for value in records:
                alert = json.loads(value)
                results = await asyncio.gather(*(deliver(alert, t, session, policy, rng) for t in receivers))
                failed = []
                for target, result in zip(receivers, results, strict=True):
                    metrics.deliveries.labels(target=target.name, outcome=result.outcome).inc()
                    metrics.delivery_seconds.observe(result.seconds)
                    metrics.delivery_retries.labels(target=target.name).inc(len(result.retries))
                    if result.outcome != "delivered":
                        failed.append(
                            {
                                "target": target.name,
                                "outcome": result.outcome,
                                "detail": result.detail,
                                "attempts": result.attempts,
                            }
                        )
                if failed:
                    letter = {"alert": alert, "failures": failed}
                    key = f"{alert['alert_id']}{SEP}{alert['status']}".encode()
                    await (await dead.send(key=key, value=dumps(letter)))
                    metrics.alerts_dead.inc()


def create_delivery_app(
    app: faust.App, topics: TopicSettings, settings: AlertSettings, metrics: WorkerMetrics
) -> faust.App:
    """An app that only delivers alerts (``finmon alerts``), with /metrics."""
    from streams.worker.health import serve_metrics

    add_delivery(app, topics, settings, metrics)
    serve_metrics(app, metrics)
    return app
