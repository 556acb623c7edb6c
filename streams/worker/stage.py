"""What every stage of the worker is wired with: the app, its topic names, the metrics and the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import faust

from streams.settings import KafkaSettings, StreamSettings, TopicSettings, WindowSettings
from streams.worker.metrics import WorkerMetrics


@dataclass
class Wiring:
    """The parts the stages share."""

    app: faust.App
    names: TopicSettings
    stream: StreamSettings
    windows: WindowSettings
    metrics: WorkerMetrics
    clock: Callable[[], float] = time.time
    kafka: KafkaSettings | None = None  # for the stages' own clients

    @property
    def trend_events(self) -> str:
        return trend_events_topic(self.stream)


def trend_events_topic(stream: StreamSettings) -> str:
    return f"{stream.app_id}-trend-events"


def changelog_topic(stream: StreamSettings) -> str:
    return f"{stream.app_id}-windows-changelog"


async def send_all(sends: Iterable[Awaitable[Any]]) -> None:
    """Send in order, then wait for every acknowledgement: offsets commit only after all outputs."""
    pending = [await send for send in sends]
    await asyncio.gather(*pending)
