"""What every stage of the worker is wired with: the app, its topics, the metrics and the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust

from streams.settings import KafkaSettings, StreamSettings, TopicSettings, WindowSettings
from streams.worker.metrics import WorkerMetrics

Send = Callable[..., Awaitable[Any]]


@dataclass
class Wiring:
    """The parts the stage factories share; ``topic`` declares a raw-bytes topic once."""

    app: faust.App
    names: TopicSettings
    stream: StreamSettings
    windows: WindowSettings
    metrics: WorkerMetrics
    clock: Callable[[], float] = time.time
    topics: dict[str, Any] = field(default_factory=dict)
    kafka: KafkaSettings | None = None  # for the stages' own admin requests

    @property
    def trend_events(self) -> str:
        return trend_events_topic(self.stream)

    def topic(self, name: str, internal: bool = False) -> Any:
        if name not in self.topics:
            self.topics[name] = self.app.topic(
                name,
                key_serializer="raw",
                value_serializer="raw",
                partitions=self.names.partitions,
                replicas=self.names.replication,
                internal=internal,
            )
        return self.topics[name]

    def table(self, name: str) -> Any:
        return self.app.Table(name, default=None, partitions=self.names.partitions, key_type=str)


def trend_events_topic(stream: StreamSettings) -> str:
    return f"{stream.app_id}-trend-events"


def changelog_topic(stream: StreamSettings) -> str:
    return f"{stream.app_id}-windows-changelog"


async def send_all(sends: Iterable[Awaitable[Any]]) -> None:
    """Send in order, then wait for every acknowledgement: offsets commit only after all outputs."""
    pending = [await send for send in sends]
    await asyncio.gather(*pending)
