"""Stage 2, windows: packed trend events -> window state in memory -> sentiment.trends, with the
state written to a compacted changelog once per checkpoint, beneath faust like the score stage.

One ``TrendWindows`` per trend-events partition. Every ``emit_interval`` seconds a checkpoint
publishes the changed open windows and the closed ones, writes each changed bucket once (with the
last offset it covers), the new seen markers in chunks and the deletions of expired state, then
commits the offsets it covers once all of that is acknowledged. A partition assigned to this
worker is first read back from its changelog partition.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from mode import Service

from streams.cluster.topics import client_options
from streams.core.records import DeadLetter, unpack_events
from streams.core.scoring import Output, dead_letter_bytes
from streams.core.windows import SEP, TrendWindows, window_specs
from streams.worker.pipe import Pipe, PipeError, Stage
from streams.worker.stage import Wiring, changelog_topic

log = logging.getLogger(__name__)


class WindowStage(Service):
    def __init__(self, w: Wiring, pipe: Pipe, model_version: str, **kwargs: Any) -> None:
        self.w, self.pipe, self.model_version = w, pipe, model_version
        self.specs = window_specs(w.windows)
        self.tumbling = self.specs[0].name
        self.watch = frozenset(t.upper() for t in w.windows.watch_tickers)
        self.states: dict[int, TrendWindows] = {}
        self.offsets: dict[int, int] = {}  # partition -> next offset, applied since the last checkpoint
        self.letters: dict[int, list[Output]] = {}
        self.last_checkpoint = 0.0
        pipe.stage = Stage(self.assigned, self.revoked)
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.pipe.start()

    async def on_stop(self) -> None:
        async with self.pipe.lock:
            try:
                await asyncio.wait_for(self.checkpoint(list(self.states)), 3)
            except (TimeoutError, PipeError) as exc:
                log.warning("windows: last checkpoint not written (%s); replayed at the next start", exc)
        await self.pipe.stop()

    @Service.task
    async def _run(self) -> None:
        within = min(self.w.stream.batch_within, self.w.windows.emit_interval)
        while not self.should_stop:
            try:
                records = await self.pipe.take(self.w.stream.batch_max * 4, within)
                async with self.pipe.lock:
                    now = self.w.clock()
                    for record in records:
                        self.apply(record, now)
                    if now - self.last_checkpoint >= self.w.windows.emit_interval:
                        await self.checkpoint(list(self.states))
                await self.pipe.settle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the stage keeps going; what was not committed is replayed
                log.error("windows: %s; reading again from the last commit", exc)
                self.pipe.damaged = True

    def apply(self, record: ConsumerRecord[bytes, bytes], now: float) -> None:
        state = self.states.get(record.partition)
        if state is None:
            return
        self.offsets[record.partition] = record.offset + 1
        try:
            events = unpack_events(record.value or b"")
        except (ValueError, TypeError) as exc:
            letter = DeadLetter("schema", f"not a packed trend-events message: {exc}", record.value or b"",
                                record.topic, record.partition, record.offset, record.key)  # fmt: skip
            self.letters.setdefault(record.partition, []).append(
                Output(self.w.names.dlq, letter.key, dead_letter_bytes(letter))
            )
            self.w.metrics.dead_letters.labels(reason="schema").inc()
            return
        for index, event in enumerate(events):
            outcome = state.add(event, now, (record.offset, index))
            self.w.metrics.window_events.labels(scope=event.scope, outcome=outcome.reason).inc()

    async def checkpoint(self, partitions: list[int]) -> None:
        """Trends, changelog writes and dead letters of these partitions, and the offsets they cover."""
        now = self.w.clock()
        self.last_checkpoint = now
        outputs: dict[int, list[Output]] = {}
        for partition in partitions:
            state = self.states.get(partition)
            if state is None:
                continue
            records = state.updates(now) + state.close(now)
            state.expire(now)
            out = outputs.setdefault(partition, self.letters.pop(partition, []))
            out += [Output(self.w.names.trends, f"{r.scope}{SEP}{r.key}".encode(), r.encode()) for r in records]
            out += [Output(self.changelog, k, v, partition=partition) for k, v in state.checkpoint()]
            for r in records:
                self.w.metrics.trend_records.labels(final=str(r.final).lower()).inc()
                if r.final and r.window == self.tumbling:
                    self.w.metrics.closed_window(r, self.watch)
        offsets = {p: self.offsets.pop(p) for p in partitions if p in self.offsets}
        self.w.metrics.window_state_keys.set(sum(s.size() for s in self.states.values()))
        if outputs or offsets:
            await self.pipe.write(outputs, offsets)

    @property
    def changelog(self) -> str:
        return changelog_topic(self.w.stream)

    async def assigned(self, partitions: list[int]) -> None:
        for partition in partitions:
            if partition not in self.states:
                state = TrendWindows(self.specs, self.w.windows.grace_seconds, self.w.windows.max_future_seconds,
                                     self.model_version, self.w.windows.silent_windows, changelog=True)  # fmt: skip
                state.restore(await self.read_changelog(partition))
                self.states[partition] = state
        self.w.metrics.window_state_keys.set(sum(s.size() for s in self.states.values()))

    async def revoked(self, partitions: list[int], flush: bool) -> None:
        """Write what the partitions hold (with ``flush``), then forget them, even if the write failed: a
        partition that comes back is restored from its changelog, never from stale memory."""
        try:
            if flush:
                await self.checkpoint([p for p in partitions if p in self.states])
                await self.pipe.settle(everything=True, timeout=self.w.stream.session_timeout)
        finally:
            for partition in partitions:
                self.states.pop(partition, None)
                self.offsets.pop(partition, None)
                self.letters.pop(partition, None)

    async def read_changelog(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        """Every record of one changelog partition, from its start to its end now."""
        assert self.w.kafka is not None
        consumer = AIOKafkaConsumer(
            **client_options(self.w.kafka), enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.changelog, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            found: list[tuple[bytes, bytes | None]] = []
            while await consumer.position(tp) < end:
                for records in (await consumer.getmany(tp, timeout_ms=500, max_records=10_000)).values():
                    found += [(r.key or b"", r.value) for r in records]
            return found
        finally:
            await consumer.stop()
