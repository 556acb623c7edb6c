"""A stage's Kafka plumbing beneath faust: batches from aiokafka's ``getmany``, outputs pipelined,
offsets committed only once the outputs that account for them are acknowledged.

faust's per-event path costs ~80 µs of CPU a consumed event and ~130 µs a produced record; a stage
that handles thousands of documents a second consumes here instead, in batches, with manual
commits (faust still runs the app: web, timers, the lower-rate stages). With ``exactly_once`` each
input partition has a transactional producer of its own (``<group>-<partition>``, so a restarted
worker fences the one it replaces) and a batch's outputs and offsets commit in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from aiokafka.structs import ConsumerRecord

from streams.cluster.closing import close_all, within
from streams.cluster.topics import client_options
from streams.core.scoring import Output
from streams.settings import KafkaSettings, StreamSettings
from streams.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 2  # checkpoints whose sends may be outstanding while the next batch is taken
COMMIT_EVERY = 1.0  # seconds between offset commits while running (at a rebalance or a stop: at once)
STOP_SECONDS = 5.0  # what a stop may spend flushing, and then closing each client, before it gives up
START_SECONDS = 120.0  # how long a stage tries to start while the cluster does not answer


class PipeError(Exception):
    """An output could not be written, nor its dead letter: the stage reads again from its last commit."""


@dataclass
class _Checkpoint:
    sends: list[tuple[Output, asyncio.Future[Any]]]
    offsets: dict[TopicPartition, int]  # next offsets, committable once every send is acknowledged


@dataclass
class Stage:
    """What a stage gives its pipe: called under the pipe's lock, never concurrently."""

    assigned: Callable[[list[int]], Awaitable[None]]
    revoked: Callable[[list[int], bool], Awaitable[None]]  # (partitions, write what they hold first)


@dataclass
class Pipe:
    """One consumer (``group`` on ``topic``) and the producer(s) that write the stage's outputs."""

    kafka: KafkaSettings
    stream: StreamSettings
    group: str
    topic: str
    metrics: WorkerMetrics
    fallback: Callable[[Output, BaseException], Output | None] = lambda output, error: None
    stage: Stage | None = None
    consumer: AIOKafkaConsumer | None = None
    producer: AIOKafkaProducer | None = None
    producers: dict[int, AIOKafkaProducer] = field(default_factory=dict)
    fenced_at: dict[int, float] = field(default_factory=dict)  # partition -> when its producer was fenced
    inflight: deque[_Checkpoint] = field(default_factory=deque)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    read: dict[TopicPartition, int] = field(default_factory=dict)  # next offset to read, per partition
    ready: dict[TopicPartition, int] = field(default_factory=dict)  # acknowledged, not committed yet
    last_commit: float = 0.0
    damaged: bool = False  # a batch or its outputs failed: read again from the last commit before going on
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def transactional(self) -> bool:
        return self.stream.processing_guarantee == "exactly_once"

    def _producer_options(self) -> dict[str, Any]:
        return {
            **client_options(self.kafka),
            "acks": "all" if self.stream.idempotent_producer or self.transactional else 1,
            "enable_idempotence": self.stream.idempotent_producer or self.transactional,
            "linger_ms": int(self.stream.producer_linger * 1000),
            "max_batch_size": 512 * 1024,
            "max_request_size": 1_048_576,
            "request_timeout_ms": 30_000,
        }

    async def start(self) -> None:
        """Start the clients, trying again while the cluster does not answer (a broker restarting)."""
        await starting(self._start, self.group)

    async def _start(self) -> None:
        await close_all([self.consumer, self.producer], STOP_SECONDS / 2, self.group)  # of an earlier try
        self.consumer = group_consumer(
            self.kafka,
            self.stream,
            self.group,
            max_poll_interval_ms=300_000,
            max_partition_fetch_bytes=4 * 1_048_576,
        )
        if not self.transactional:
            self.producer = AIOKafkaProducer(**self._producer_options())
            await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([self.topic], listener=_Listener(self))

    def assignment(self) -> list[int]:
        if self.consumer is None:
            return []
        return sorted(tp.partition for tp in self.consumer.assignment() if tp.topic == self.topic)

    async def take(self, max_records: int, within: float) -> list[ConsumerRecord[bytes, bytes]]:
        """The next batch, in partition order; waits ``within`` seconds at most for the first record."""
        assert self.consumer is not None
        if self.damaged:
            try:
                async with self.lock:
                    await self.rewind()
                self.damaged = False
            except Exception as exc:  # the cluster is away: nothing is taken until the rewind succeeds
                log.warning("%s: cannot read again from the last commit yet: %s", self.group, exc)
                await asyncio.sleep(1.0)
                return []
        if self.fenced_at:
            await asyncio.sleep(within)  # fenced out of a partition: the rebalance that takes it is under way
            return []
        found = await self.consumer.getmany(timeout_ms=int(within * 1000), max_records=max_records)
        owned = self.consumer.assignment()
        taken = [(tp, records) for tp, records in sorted(found.items()) if tp in owned and records]
        for tp, records in taken:
            self.read[tp] = records[-1].offset + 1
        return [record for _, records in taken for record in records]

    async def write(self, outputs: dict[int, list[Output]], offsets: dict[int, int]) -> None:
        """Hand a checkpoint's outputs to the producer; ``offsets`` (partition -> next offset) commit once
        they are acknowledged. At least once: returns at once (the next batch is taken while these are
        in flight). Exactly once: one transaction per input partition, committed before it returns."""
        if self.transactional:
            for partition in sorted(set(outputs) | set(offsets)):
                await self._transaction(partition, outputs.get(partition, []), offsets.get(partition))
            return
        assert self.producer is not None
        sends = [(out, await self._send(self.producer, out)) for part in outputs.values() for out in part]
        tps = {TopicPartition(self.topic, p): o for p, o in offsets.items()}
        self.inflight.append(_Checkpoint(sends, tps))

    async def _send(self, producer: AIOKafkaProducer, out: Output) -> asyncio.Future[Any]:
        try:
            return await producer.send(
                out.topic, out.value, key=out.key, partition=out.partition, timestamp_ms=_stamp(out)
            )
        except Exception as exc:  # refused before it left (too large for the client, buffer timeout)
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    async def _producer_for(self, partition: int) -> AIOKafkaProducer:
        """The partition's transactional producer, made when the group assigns the partition. One fenced
        out is made again only by the next assignment: a worker that made it again on its own could
        fence the partition's new owner and commit beside it."""
        producer = self.producers.get(partition)
        if producer is not None:
            return producer
        assert self.consumer is not None
        if partition in self.fenced_at or TopicPartition(self.topic, partition) not in self.consumer.assignment():
            raise PipeError(f"partition {partition} is being handed over")
        producer = AIOKafkaProducer(**self._producer_options(), transactional_id=f"{self.group}-{partition}")
        await producer.start()
        self.producers[partition] = producer
        return producer

    async def _transaction(self, partition: int, outputs: list[Output], offset: int | None) -> None:
        producer = await self._producer_for(partition)
        try:
            await self._in_transaction(producer, partition, outputs, offset)
        except ProducerFenced as exc:  # another worker owns the partition now: until the rebalance says so, wait
            if self.producers.get(partition) is producer:  # not a stale one the last assignment replaced
                del self.producers[partition]
                self.fenced_at[partition] = time.monotonic()
            await close_all([producer], STOP_SECONDS / 2, self.group)
            raise PipeError(f"partition {partition}: {exc}") from exc

    async def _in_transaction(
        self, producer: AIOKafkaProducer, partition: int, outputs: list[Output], offset: int | None
    ) -> None:
        async with producer.transaction():
            futures = [  # a send refused here raises, and the transaction aborts: nothing of it is committed
                await producer.send(o.topic, o.value, key=o.key, partition=o.partition, timestamp_ms=_stamp(o))
                for o in outputs
            ]
            if offset is not None:
                tp = TopicPartition(self.topic, partition)
                await producer.send_offsets_to_transaction({tp: offset}, self.group)
        for future in futures:
            future.result()  # the transaction committed: every send is acknowledged
        if offset is not None:
            self.committed[TopicPartition(self.topic, partition)] = offset

    async def settle(self, everything: bool = False, timeout: float | None = None) -> None:
        """Wait for the oldest checkpoints' acknowledgements (all of them with ``everything``, else only
        beyond MAX_IN_FLIGHT), send the dead letters of outputs that failed, then commit."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.inflight:
            head = self.inflight[0]
            waiting = [future for _, future in head.sends if not future.done()]
            if waiting and not everything and len(self.inflight) <= MAX_IN_FLIGHT:
                break
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if waiting:
                done, _ = await asyncio.wait(waiting, timeout=left)
                if len(done) < len(waiting):
                    break  # out of time: these offsets stay uncommitted, read again by whoever owns them next
            await self._failures(head)
            self.inflight.popleft()
            self.ready.update(head.offsets)
        if self.ready and (everything or time.monotonic() - self.last_commit >= COMMIT_EVERY):
            ready, self.ready = self.ready, {}
            await self.commit(ready)

    async def _failures(self, checkpoint: _Checkpoint) -> None:
        """Outputs the cluster refused are sent again one at a time (a broker refuses a whole batch of
        records for one that is too large, so its neighbours go through alone); what is refused alone
        is dead-lettered by the stage's fallback, or the stage reads again from its last commit."""
        failed = [out for out, future in checkpoint.sends if future.exception() is not None]
        if not failed:
            return
        await self._renew()
        for out in failed:
            assert self.producer is not None
            try:
                await (await self.producer.send(
                    out.topic, out.value, key=out.key, partition=out.partition, timestamp_ms=_stamp(out)
                ))  # fmt: skip
                continue
            except Exception as exc:
                error = exc
            await self._renew()
            letter = self.fallback(out, error)
            if letter is None:
                raise PipeError(f"{out.topic}: {type(error).__name__}: {error}") from error
            log.warning("%s refused a record alone (%s); dead-lettered", out.topic, error)
            try:
                await (await self.producer.send(letter.topic, letter.value, key=letter.key))
            except Exception as exc:
                raise PipeError(f"{letter.topic}: {type(exc).__name__}: {exc}") from exc

    async def _renew(self) -> None:
        """A new producer: a batch the broker refused leaves an idempotent producer's sequence numbers
        behind the broker's, so every later send of that partition would be refused as out of order."""
        old, self.producer = self.producer, AIOKafkaProducer(**self._producer_options())
        if old is not None:
            # what it still held fails or lands; its checkpoints settle as usual
            await close_all([old], STOP_SECONDS, self.group)
        await self.producer.start()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        async with self.commit_lock:
            owned = self.consumer.assignment()
            todo = {tp: o for tp, o in offsets.items() if tp in owned and o > self.committed.get(tp, -1)}
            if not todo:
                return
            began = self.last_commit = time.monotonic()
            try:
                await self.consumer.commit(todo)
            except Exception as exc:  # a rebalance under way: the next owner reads from the last commit
                log.warning("%s: commit refused (%s); the offsets are read again", self.group, exc)
                return
            self.metrics.commit_seconds.observe(time.monotonic() - began)
            self.committed.update(todo)

    async def rewind(self) -> None:
        """After an output that could be neither written nor dead-lettered: forget what is in flight,
        let the stage drop its state, and read every partition again from the last commit."""
        assert self.consumer is not None and self.stage is not None
        self.inflight.clear()
        self.ready.clear()
        partitions = self.assignment()
        await self.stage.revoked(partitions, False)
        await self.stage.assigned(partitions)
        for partition in partitions:
            tp = TopicPartition(self.topic, partition)
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    async def stop(self) -> None:
        """Flush and commit what is acknowledged within STOP_SECONDS, say what was left, leave the group."""
        try:
            if not await within(self.settle(everything=True), STOP_SECONDS):
                raise TimeoutError(f"not acknowledged within {STOP_SECONDS:.0f} s")
        except (TimeoutError, PipeError) as exc:
            left = sum(len(c.sends) for c in self.inflight)
            log.warning("%s: stopped with %d outputs unacknowledged (%s); they are read again", self.group, left, exc)
        await close_all([self.consumer, self.producer, *self.producers.values()], STOP_SECONDS / 2, self.group)

    def lag(self) -> Iterable[tuple[TopicPartition, int]]:
        """End offset minus the committed offset (before the first commit, the position) per partition."""
        if self.consumer is None:
            return
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            if end is None:
                continue
            position = self.committed.get(tp, self.read.get(tp, end))
            yield tp, max(0, int(end) - int(position))


async def starting(start: Callable[[], Awaitable[None]], owner: str, seconds: float = START_SECONDS) -> None:
    """``start()`` until it succeeds; a cluster that does not answer within ``seconds`` is an error."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await start()
            return
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("%s: cannot start yet (%s); trying again", owner, exc)
            await asyncio.sleep(1.0)


def group_consumer(kafka: KafkaSettings, stream: StreamSettings, group: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer of ``group`` that commits by hand, reads committed records only and starts from the
    earliest offset where the group has none."""
    return AIOKafkaConsumer(
        **client_options(kafka),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=int(stream.session_timeout * 1000),
        heartbeat_interval_ms=int(stream.heartbeat_interval * 1000),
        **options,
    )


def _stamp(out: Output) -> int | None:
    return int(out.timestamp * 1000) if out.timestamp is not None else None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what is acknowledged before partitions go, and lets the stage load or drop their state."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        pipe = self.pipe
        pipe.metrics.rebalances.inc()
        partitions = sorted(tp.partition for tp in revoked if tp.topic == pipe.topic)
        async with pipe.lock:
            try:
                await pipe.settle(everything=True, timeout=pipe.stream.session_timeout)
            except Exception as exc:
                log.warning(
                    "%s: outputs of revoked partitions failed (%s); read again by their next owner", pipe.group, exc
                )
                pipe.inflight.clear()
            if pipe.stage is not None:
                try:
                    await pipe.stage.revoked(partitions, True)
                except Exception as exc:  # a fenced producer among them, or the cluster away
                    log.warning(
                        "%s: state of revoked partitions not written (%s); its next owner replays", pipe.group, exc
                    )
                    pipe.inflight.clear()
            await close_all([pipe.producers.pop(p, None) for p in partitions], STOP_SECONDS / 2, pipe.group)
            for tp in revoked:
                pipe.fenced_at.pop(tp.partition, None)  # the hand-over is done: the partition is not ours
                pipe.committed.pop(tp, None)
                pipe.read.pop(tp, None)
                pipe.ready.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        pipe = self.pipe
        partitions = sorted(tp.partition for tp in assigned if tp.topic == pipe.topic)
        async with pipe.lock:
            assert pipe.consumer is not None
            for tp in assigned:
                committed = await pipe.consumer.committed(tp)
                if committed is not None:
                    pipe.committed[tp] = committed
            if pipe.transactional:
                for partition in partitions:  # the group gives it to this worker: no hand-over is under way
                    pipe.fenced_at.pop(partition, None)
                    await pipe._producer_for(partition)  # fences the producer of a worker that held it
            if pipe.stage is not None:
                await pipe.stage.assigned(partitions)
