"""Stream health from faust's sensor hooks: rebalances, commit latency, consumer lag per partition."""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.types import TP

from streams.worker.metrics import WorkerMetrics


class StreamHealth(faust.Sensor):
    """Feeds the worker's metrics from faust's own events (no second Prometheus exporter)."""

    def __init__(self, metrics: WorkerMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.read: dict[TP, int] = {}

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self.read[tp] = offset + 1

    def on_commit_initiated(self, consumer: Any) -> Any:
        return time.monotonic()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        if isinstance(state, float):
            self.metrics.commit_seconds.observe(time.monotonic() - state)

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        self.metrics.rebalances.inc()
        return {}

    def refresh_lag(self, app: faust.App) -> None:
        """Set finmon_consumer_lag for every assigned partition (called at scrape time)."""
        consumer = app.consumer
        if consumer is None:
            return
        self.metrics.consumer_lag.clear()
        for tp in consumer.assignment():
            try:
                end = consumer.highwater(tp)
            except Exception:  # the driver raises while a partition is not fetched yet
                continue
            if end is None:
                continue
            # the group's committed offset, as any Kafka tool reckons lag; before the first commit, what was read
            committed = consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
            position = committed if committed is not None else self.read.get(tp, int(end))
            lag = max(0, int(end) - int(position))
            self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)


def serve_metrics(app: faust.App, metrics: WorkerMetrics) -> StreamHealth:
    """Attach the stream-health sensor and serve /metrics (lag refreshed at each scrape)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    sensor = StreamHealth(metrics)
    app.sensors.add(sensor)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        sensor.refresh_lag(app)
        return web.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return sensor


def add_health(app: faust.App, metrics: WorkerMetrics, model: dict[str, Any]) -> None:
    """/health: 200 once the worker holds partitions, 503 before."""

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        metrics.assigned_partitions.set(assigned)
        ready = assigned > 0
        body = {"status": "ready" if ready else "starting", "model": model, "assigned_partitions": assigned}
        return web.json(body, status=200 if ready else 503)
