"""Stage 1, score: news -> news.scored, news.dlq and the trend events of each batch, in batches
beneath faust, inference off the event loop.

A batch's trend events are made here from the scored records in memory (never by reading
news.scored back) and packed: one message per trend-events partition per batch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord
from mode import Service

from models.routing import Router
from models.runtime import Classifier
from streams.core.companies import Linker
from streams.core.decode import Limits
from streams.core.records import TrendEvent, pack_events
from streams.core.scoring import BatchResult, Message, Output, dead_letter_bytes, letter_for, message_time, score_batch
from streams.core.windows import SEP, trend_events
from streams.worker.metrics import WorkerMetrics
from streams.worker.pipe import Pipe, PipeError
from streams.worker.stage import Wiring

log = logging.getLogger(__name__)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


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

    def count(self, result: BatchResult, messages: Sequence[Message], dead: Sequence[str], now: float) -> None:
        self.metrics.observe_inference(result.timings)
        for doc, record in result.scored:
            self.metrics.scored.labels(topic=record["topic"], sentiment=record["sentiment"]).inc()
            self.metrics.event_to_scored.observe(max(0.0, now - doc.published_at.timestamp()))
        for message in messages:
            if message.timestamp:
                self.metrics.ingest_to_scored.observe(max(0.0, now - message.timestamp))
        for reason in dead:
            self.metrics.dead_letters.labels(reason=reason).inc()


def message_of(record: ConsumerRecord[bytes, bytes]) -> Message:
    stamp = record.timestamp / 1000 if record.timestamp is not None else None
    return Message(record.value, record.key, record.topic, record.partition, record.offset, stamp)


class ScoreStage(Service):
    """news in batches -> scored records, dead letters and packed trend events; commits after acks."""

    def __init__(self, w: Wiring, scorer: Scorer, pipe: Pipe, **kwargs: Any) -> None:
        self.w, self.scorer, self.pipe = w, scorer, pipe
        self.events_partitions = w.names.partitions
        pipe.fallback = self.refused
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.pipe.start()
        assert self.pipe.producer is not None or self.pipe.transactional
        self.events_partitions = await self._partitions(self.w.trend_events)

    async def _partitions(self, topic: str) -> int:
        assert self.pipe.consumer is not None
        await self.pipe.consumer.topics()  # the whole cluster's metadata, not only the subscribed topics'
        partitions = self.pipe.consumer.partitions_for_topic(topic)
        return len(partitions) if partitions else self.w.names.partitions

    async def on_stop(self) -> None:
        async with self.pipe.lock:  # the batch being scored finishes and is handed to the producer
            pass
        await self.pipe.stop()

    @Service.task
    async def _run(self) -> None:
        stream = self.w.stream
        while not self.should_stop:
            try:
                records = await self.pipe.take(stream.batch_max, stream.batch_within)
                if records:
                    async with self.pipe.lock:
                        await self.handle(records)
                await self.pipe.settle()
            except PipeError as exc:
                log.error("scoring: %s; reading again from the last commit", exc)
                self.pipe.damaged = True
            except asyncio.CancelledError:
                raise
            except Exception:  # the stage keeps going; what was not committed is read again
                log.exception("scoring: batch failed; reading again from the last commit")
                self.pipe.damaged = True

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        messages = [message_of(r) for r in records]
        self.w.metrics.consumed.inc(len(messages))
        result = await self.scorer.score(messages)
        now = self.w.clock()
        outputs, reasons = self.outputs(result, now)
        offsets: dict[int, int] = {}
        for record in records:
            offsets[record.partition] = record.offset + 1
        await self.pipe.write(outputs, offsets)
        self.scorer.count(result, messages, reasons, now)

    def outputs(self, result: BatchResult, now: float) -> tuple[dict[int, list[Output]], list[str]]:
        """Every output of a batch by the news partition it accounts for: each scored record, each dead
        letter, and the batch's trend events packed per trend-events partition (per news partition
        too, with exactly_once, where each news partition commits in a transaction of its own)."""
        names = self.w.names
        scored, dead = result.encoded()
        outputs: dict[int, list[Output]] = {}
        events: dict[tuple[int, int], list[TrendEvent]] = {}
        per_partition = self.pipe.transactional
        for doc, record, value in scored:
            source = result.sources[doc.id]
            part = int(source.partition or 0)
            outputs.setdefault(part, []).append(
                Output(names.scored, doc.id.encode(), value, message_time(doc, now), source=source)
            )
            for event in trend_events(record, doc.published_at.timestamp()):
                target = partition_of(f"{event.scope}{SEP}{event.key}".encode(), self.events_partitions)
                events.setdefault((part if per_partition else -1, target), []).append(event)
        for letter, value in dead:
            outputs.setdefault(int(letter.partition or 0), []).append(Output(names.dlq, letter.key, value))
        for (part, target), packed in sorted(events.items()):
            home = part if per_partition else min(outputs)
            outputs[home].append(Output(self.w.trend_events, None, pack_events(packed), partition=target))
        return outputs, [letter.reason for letter, _ in dead]

    def refused(self, output: Output, error: BaseException) -> Output | None:
        """A scored record the cluster refused is dead-lettered alone (a packed event message is not)."""
        if output.source is None:
            return None
        self.w.metrics.dead_letters.labels(reason="output_refused").inc()
        letter = letter_for(output.source, "output_refused", f"{output.topic}: {type(error).__name__}: {error}")
        return Output(self.w.names.dlq, letter.key, dead_letter_bytes(letter))
