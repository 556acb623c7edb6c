"""Stream health from faust's sensor hooks: rebalances, commit latency, consumer lag per partition."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import faust
from faust.types import TP
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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

    def lag(self, app: faust.App) -> Iterator[tuple[TP, int]]:
        """Messages behind the end of each assigned partition, as any Kafka tool reckons lag: the log
        end offset minus the group's committed offset (before the first commit, what was read)."""
        consumer = app.consumer
        for tp in consumer.assignment() if consumer is not None else ():
            try:
                end = consumer.highwater(tp)
            except Exception:  # the driver raises while a partition is not fetched yet
                continue
            if end is None:
                continue
            committed = consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
            position = committed if committed is not None else self.read.get(tp, int(end))
            yield tp, max(0, int(end) - int(position))


class LagCollector(Collector):
    """finmon_consumer_lag, computed when Prometheus scrapes (nothing to keep up to date in between)."""

    def __init__(self, app: faust.App, sensor: StreamHealth) -> None:
        self.app, self.sensor = app, sensor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "finmon_consumer_lag", "Messages behind the end of each assigned partition.", labels=["topic", "partition"]
        )
        for tp, lag in self.sensor.lag(self.app):
            family.add_metric([tp.topic, str(tp.partition)], lag)
        yield family


def serve_metrics(app: faust.App, metrics: WorkerMetrics) -> StreamHealth:
    """Attach the stream-health sensor and serve /metrics with prometheus_client's own aiohttp handler."""
    sensor = StreamHealth(metrics)
    app.sensors.add(sensor)
    metrics.registry.register(LagCollector(app, sensor))
    exposition = make_aiohttp_handler(metrics.registry)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return await exposition(request)

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
