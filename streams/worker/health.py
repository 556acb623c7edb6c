"""The worker's web pages: /metrics (with consumer lag per partition, computed at scrape) and /health."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.worker.metrics import WorkerMetrics
from streams.worker.pipe import Pipe


class LagCollector(Collector):
    """finmon_consumer_lag, computed when Prometheus scrapes (nothing to keep up to date in between)."""

    def __init__(self, pipes: list[Pipe]) -> None:
        self.pipes = pipes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "finmon_consumer_lag", "Messages behind the end of each assigned partition.", labels=["topic", "partition"]
        )
        for pipe in self.pipes:
            for tp, lag in pipe.lag():
                family.add_metric([tp.topic, str(tp.partition)], lag)
        yield family


def serve_metrics(app: faust.App, metrics: WorkerMetrics, pipes: list[Pipe] | None = None) -> None:
    """Serve /metrics with prometheus_client's own aiohttp handler (consumer lag of the batch stages)."""
    if pipes:
        metrics.registry.register(LagCollector(pipes))
    exposition = make_aiohttp_handler(metrics.registry)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return await exposition(request)


def add_health(app: faust.App, metrics: WorkerMetrics, model: dict[str, Any], scoring: Pipe) -> None:
    """/health: 200 once the worker holds news partitions, 503 before."""

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        assigned = len(scoring.assignment())
        metrics.assigned_partitions.set(assigned)
        ready = assigned > 0
        body = {"status": "ready" if ready else "starting", "model": model, "assigned_partitions": assigned}
        return web.json(body, status=200 if ready else 503)
