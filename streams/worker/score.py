"""Stage 1, score: news -> news.scored and news.dlq, a batch at a time, inference off the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP

from models.routing import Router
from models.runtime import Classifier
from streams.cluster.topics import client_options
from streams.core.companies import Linker
from streams.core.decode import Limits
from streams.core.gaps import GapGuard
from streams.core.scoring import BatchResult, Message, score_batch
from streams.worker.metrics import WorkerMetrics
from streams.worker.stage import Wiring, send_all

log = logging.getLogger(__name__)


@dataclass
class Scorer:
    """Classifies batches in one inference thread and counts what came out."""

    classifier: Router | Classifier
    limits: Limits
    metrics: WorkerMetrics
    linker: Linker | None = None
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="finmon-inference")
    )

    async def score(self, messages: Sequence[Message]) -> BatchResult:
        loop = asyncio.get_running_loop()
        job = functools.partial(score_batch, messages, self.classifier, self.limits, linker=self.linker)
        return await loop.run_in_executor(self.executor, job)

    def count(self, result: BatchResult, messages: Sequence[Message], now: float) -> None:
        self.metrics.observe_inference(result.timings)
        for doc, record in result.scored:
            self.metrics.scored.labels(topic=record["topic"], sentiment=record["sentiment"]).inc()
            self.metrics.event_to_scored.observe(max(0.0, now - doc.published_at.timestamp()))
        for message in messages:
            if message.timestamp:
                self.metrics.ingest_to_scored.observe(max(0.0, now - message.timestamp))
        for letter in result.dead:
            self.metrics.dead_letters.labels(reason=letter.reason).inc()


def message_of(event: Any) -> Message:
    m = event.message
    return Message(m.value, m.key, m.topic, m.partition, m.offset, m.timestamp)


def add_score(w: Wiring, scorer: Scorer, offsets: OffsetCheck) -> None:
    scored, dlq = w.topic(w.names.scored), w.topic(w.names.dlq)

    @w.app.agent(w.topic(w.names.news))
    async def score(stream: Any) -> None:
        async for events in stream.take_events(w.stream.batch_max, within=w.stream.batch_within):
            messages = [message_of(e) for e in events]
            w.metrics.consumed.inc(len(messages))
            async with offsets.scoring(events[0].message.generation_id, messages):
                result = await scorer.score(messages)
                scored_out, dead_out = result.outputs()
                await send_all(
                    [scored.send(key=k, value=v, timestamp=ts) for k, v, ts in scored_out]
                    + [dlq.send(key=k, value=v) for k, v in dead_out]
                )
                scorer.count(result, messages, w.clock())


class OffsetCheck:
    """Reads again what the consumer dropped at a rebalance (see streams.core.gaps)."""

    def __init__(self, w: Wiring) -> None:
        self.w, self.guard = w, GapGuard()
        self.admin: AIOKafkaAdminClient | None = None
        self.seeks: set[asyncio.Task[None]] = set()

    @property
    def consumer(self) -> Any:
        return self.w.app.consumer

    def scoring(self, generation: int | None, messages: Sequence[Message]) -> _Scoring:
        return _Scoring(self, generation, [(int(m.partition or 0), int(m.offset or 0)) for m in messages])

    async def start_offsets(self, generation: int | None, partitions: list[int]) -> None:
        """Tell the guard the group's committed offset of each partition new in this generation.

        A worker that has just been given a partition may deliver its first batch before it has
        loaded the group's offset for it; then the coordinator is asked. A partition the coordinator
        says the group never committed starts at offset 0, as ``auto_offset_reset=earliest`` starts it
        (past the log start, the reset takes the read there): a worker killed before its first commit
        leaves such partitions, and the consumer that takes them over may start past their first
        messages. Only the coordinator's answer counts as "never committed", never an offset that is
        merely not loaded yet (that would re-read a group's whole history).
        """
        tps = [TP(self.w.names.news, p) for p in self.guard.unknown(generation, partitions)]
        known = {tp: self.consumer._committed_offset.get(tp) for tp in tps}
        asked = await self.committed([tp for tp, offset in known.items() if offset is None])
        starts = {tp.partition: offset for tp, offset in {**known, **asked}.items() if offset is not None}
        self.guard.start(generation, {p: int(o) for p, o in starts.items()})

    async def committed(self, tps: list[TP]) -> dict[TP, int | None]:
        """The group's committed offsets, asked of the coordinator by an admin client of this worker's
        own: never through the consumer's thread, which a rebalance may hold while it waits for this
        very batch to finish."""
        if not tps or self.w.kafka is None:
            return {}
        try:
            if self.admin is None:
                self.admin = AIOKafkaAdminClient(**client_options(self.w.kafka))  # type: ignore[arg-type]
                await self.admin.start()
            asked = [TopicPartition(tp.topic, tp.partition) for tp in tps]
            found = await asyncio.wait_for(
                self.admin.list_consumer_group_offsets(self.w.stream.app_id, partitions=asked), 5
            )
        except Exception as exc:  # the coordinator is away: check these partitions from their first batch on
            log.warning("committed offsets unavailable (%s): not checking %s this time", exc, tps)
            return {}
        offsets = {(tp.topic, tp.partition): max(0, meta.offset) for tp, meta in found.items()}
        return {tp: offsets.get((tp.topic, tp.partition)) for tp in tps}

    async def read_again(self, found: list[tuple[int, int]], why: str) -> None:
        for partition, offset in found:
            log.warning("news partition %d: offsets from %d %s; reading them again", partition, offset, why)
            self.w.metrics.reread_ranges.inc()
            # in a task of its own: the seek goes through the consumer's thread, which a rebalance
            # may hold until this batch is done
            self.seeks.add(asyncio.create_task(self.seek(TP(self.w.names.news, partition), offset)))

    async def seek(self, tp: TP, offset: int) -> None:
        try:
            await self.consumer.seek(tp, offset)
        except Exception as exc:  # the partition moved on in a rebalance: its new owner starts from the commit
            log.warning("news partition %d: could not read again from %d: %s", tp.partition, offset, exc)
        finally:
            self.seeks.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def check_tails(self) -> None:
        """A dropped tail is followed by nothing that would show the jump: find quiet partitions short of their end."""
        if self.w.app.rebalancing:
            return
        generation = self.w.app.consumer_generation_id
        owned = [tp.partition for tp in self.consumer.assignment() if tp.topic == self.w.names.news]
        await self.start_offsets(generation, owned)
        ends = {p: self.consumer.highwater(TP(self.w.names.news, p)) for p in owned}
        found = self.guard.stalled(generation, {p: int(e) for p, e in ends.items() if e is not None})
        await self.read_again(found, "never arrived")


class _Scoring:
    """``async with``: checks a batch's offsets first, and marks the guard busy while it is scored."""

    def __init__(self, check: OffsetCheck, generation: int | None, offsets: list[tuple[int, int]]) -> None:
        self.check, self.generation, self.offsets = check, generation, offsets

    async def __aenter__(self) -> None:
        guard = self.check.guard
        guard.scoring = True
        try:
            await self.check.start_offsets(self.generation, [p for p, _ in self.offsets])
            await self.check.read_again(guard.check(self.generation, self.offsets), "were skipped")
        except BaseException:
            guard.scoring = False
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.check.guard.scoring = False


def add_offset_check(w: Wiring) -> OffsetCheck:
    check = OffsetCheck(w)

    @w.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_admin(sender: Any, *args: Any, **kwargs: Any) -> None:
        if check.admin is not None:
            await check.admin.close()

    @w.app.timer(interval=w.stream.gap_check_interval)
    async def check_tails() -> None:
        try:
            await check.check_tails()
        except Exception as exc:  # a broker away, a partition moving: the next tick looks again
            log.warning("offset check skipped: %s", exc)

    return check
