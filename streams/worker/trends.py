"""Stages 2 to 4: fan out each scored record per scope, count it in windows, emit trends on a timer.

news.scored --fan out--> <app>-trend-events (keyed by scope and key) --window (changelogged
tables)--> sentiment.trends, with a timer that publishes updates and closes windows on the clock.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.types import TP

from streams.core.records import TrendEvent
from streams.core.windows import SEP, TrendWindows, trend_events, window_specs
from streams.worker.stage import Wiring, send_all

EXPIRY_TICK = b'{"expire":true}'  # on a trend-events partition: lets its queued deletions drain


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Expiry:
    """Window state to delete, queued by partition: deletions may only be written while an event of their
    partition is current, so they drain a few at a time as events (or expiry ticks) arrive."""

    def __init__(
        self, interval: float, per_second: float = 2000.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval, self.last = interval, 0.0
        self.pending: dict[int, deque[tuple[Any, str]]] = defaultdict(deque)
        # deletions write changelog tombstones: spread them, or a burst fills the producer's buffer
        self.per_second, self.clock = per_second, clock
        self.budget, self.refilled = per_second, clock()

    def drain(self, partition: int) -> int:
        """Delete what is queued for ``partition``, as far as this second's budget allows; how many."""
        now = self.clock()
        self.budget = min(self.per_second, self.budget + (now - self.refilled) * self.per_second)
        self.refilled = now
        queue = self.pending[partition]
        done = min(int(self.budget), len(queue))
        for _ in range(done):
            mapping, key = queue.popleft()
            mapping.pop(key, None)
        self.budget -= done
        return done

    def forget(self, partitions: Iterable[int]) -> None:
        """The new owner of a partition lists its expired state itself; a queue left here would never drain."""
        for partition in partitions:
            self.pending.pop(partition, None)

    def waiting(self) -> list[int]:
        return [p for p, queue in self.pending.items() if queue]

    def plan(self, now: float, expired: Iterable[tuple[Any, str]], owned: set[int], partitions: int) -> None:
        """Queue what has expired on the partitions this worker owns, once an interval and when all drained."""
        if now - self.last < self.interval or self.waiting():
            return
        self.last = now
        for mapping, key in expired:
            scope, name, _ = key.split(SEP, 2)
            partition = partition_of(f"{scope}{SEP}{name}".encode(), partitions)
            if partition in owned:  # another worker's partition is that worker's to expire
                self.pending[partition].append((mapping, key))


def add_fan_out(w: Wiring) -> None:
    events = w.topic(w.trend_events, internal=True)

    @w.app.agent(w.topic(w.names.scored))
    async def fan_out(stream: Any) -> None:
        # a batch at a time: its trend events leave in one produce request, not one per record
        async for batch in stream.take_events(w.stream.batch_max, within=w.stream.batch_within):
            made = [e for event in batch for e in trend_events(json.loads(event.value))]
            await send_all(events.send(key=f"{e.scope}{SEP}{e.key}".encode(), value=e.encode()) for e in made)


def add_window(w: Wiring, state: TrendWindows, expiry: Expiry) -> None:
    @w.app.agent(w.topic(w.trend_events, internal=True))
    async def window(stream: faust.StreamT) -> None:
        async for event in stream.events():
            partition = event.message.partition
            if event.value != EXPIRY_TICK:  # a tick only lets deletions of its partition drain
                item = TrendEvent.decode(event.value)
                moment = faust.utils.iso8601.parse(item.published_at).timestamp()
                outcome = state.add(item, moment, w.clock(), (partition, event.message.offset))
                w.metrics.window_events.labels(scope=item.scope, outcome=outcome.reason).inc()
            expiry.drain(partition)

    @w.app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget(_: Any, revoked: set[TP], **kwargs: Any) -> None:
        expiry.forget(tp.partition for tp in revoked if tp.topic == w.trend_events)


def add_emit(w: Wiring, state: TrendWindows, expiry: Expiry) -> None:
    trends, events = w.topic(w.names.trends), w.topic(w.trend_events, internal=True)
    tumbling = window_specs(w.windows)[0].name
    watch = frozenset(t.upper() for t in w.windows.watch_tickers)

    @w.app.timer(interval=w.windows.emit_interval)
    async def emit() -> None:
        now = w.clock()
        records = state.updates(now) + state.close(now)
        await send_all(trends.send(key=f"{r.scope}{SEP}{r.key}".encode(), value=r.encode()) for r in records)
        for r in records:
            w.metrics.trend_records.labels(final=str(r.final).lower()).inc()
            if r.final and r.window == tumbling:
                w.metrics.closed_window(r, watch)
        for partition in expiry.waiting():  # idle partitions drain on a tick
            await events.send(key=b"", value=EXPIRY_TICK, partition=partition)
        w.metrics.window_state_keys.set(len(state.buckets) + len(state.seen))
        owned = {tp.partition for tp in w.app.consumer.assignment() if tp.topic == w.trend_events}
        expiry.plan(now, state.expired(now), owned, w.names.partitions)
