"""Alert delivery, one lane per webhook target: a slow or dead target holds up nothing but itself.

Each target reads the alerts topic in a consumer group of its own (``<app>-delivery-<target>``), so
its committed offsets are its delivery state: a restart, here or in another process, goes on where
it stopped, and a target that is down for hours keeps its backlog without holding any other target,
another alert, scoring, a rebalance or a stop. Within a lane:

- alerts of one subject (scope and key) go out one after another, in the order they were raised;
  alerts of different subjects go out side by side, at most ``concurrency`` requests in flight;
- a retry waits (backoff, Retry-After) without a request slot and without holding the reading of
  later alerts; reading waits only once ``max_pending`` alerts are read and not yet settled;
- what exhausts its attempts, or is refused for good, goes to alerts.dlq with this target's failure;
- the offset commits past an alert only once it and every alert before it in its partition are
  delivered or dead-lettered (at least once: a receiver dedups on the Idempotency-Key header);
- a rebalance or a stop cancels the requests in flight at once and commits what is settled: the
  next owner sends the rest again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from mode import Service

from alerts.records import Alert, AlertDeadLetter, DeliveryFailure
from alerts.settings import AlertSettings, TargetSettings
from alerts.webhook import Delivery, RetryPolicy, deliver
from streams.cluster.closing import close_all, within
from streams.cluster.topics import client_options
from streams.core.records import DeadLetter
from streams.core.scoring import dead_letter_bytes
from streams.core.windows import SEP
from streams.settings import KafkaSettings, StreamSettings, TopicSettings
from streams.worker.metrics import WorkerMetrics
from streams.worker.pipe import group_consumer, starting

log = logging.getLogger(__name__)
COMMIT_EVERY = 1.0  # seconds between commits of settled offsets while running
STOP_SECONDS = 5.0  # what a stop may spend committing, and then closing each client
LETTER_RETRY = 2.0  # seconds between tries to write a dead letter while the cluster refuses


def lane_group(app_id: str, target: TargetSettings) -> str:
    """The target's consumer group: its name, or a digest of its URL (never the URL: it may hold a token)."""
    return f"{app_id}-delivery-{target.key}"


@dataclass
class _Entry:
    offset: int
    done: bool = False


@dataclass
class Lane:
    """One target's reading, delivering and committing."""

    kafka: KafkaSettings
    stream: StreamSettings
    topics: TopicSettings
    settings: AlertSettings
    target: TargetSettings
    metrics: WorkerMetrics
    letters_for_undecodable: bool  # one lane dead-letters a record nobody can read, not every lane
    consumer: AIOKafkaConsumer | None = None
    producer: AIOKafkaProducer | None = None
    session: aiohttp.ClientSession | None = None
    pending: dict[TopicPartition, deque[_Entry]] = field(default_factory=dict)
    tasks: dict[TopicPartition, set[asyncio.Task[None]]] = field(default_factory=dict)
    chains: dict[tuple[TopicPartition, str], asyncio.Task[None]] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    last_commit: float = 0.0
    generation: int = 0  # bumped by every rebalance: records fetched across one are read again
    starts: dict[TopicPartition, int] = field(default_factory=dict)  # where each assigned partition starts
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.group = lane_group(self.stream.app_id, self.target)
        self.label = self.target.label
        self.policy = RetryPolicy(self.settings.max_attempts, self.settings.base_delay, self.settings.max_delay)
        self.slots = asyncio.Semaphore(self.settings.concurrency)
        self.rng = random.Random()

    @property
    def in_flight(self) -> int:
        return sum(len(entries) for entries in self.pending.values())

    async def start(self) -> None:
        """Start the clients, trying again while the cluster does not answer (a broker restarting)."""
        await starting(self._start, self.group)

    async def _start(self) -> None:
        await close_all([self.consumer, self.producer, self.session], STOP_SECONDS / 2, self.group)
        self.session = aiohttp.ClientSession()
        self.producer = AIOKafkaProducer(**client_options(self.kafka), acks="all", request_timeout_ms=30_000)  # type: ignore[arg-type]
        await self.producer.start()
        self.consumer = group_consumer(self.kafka, self.stream, self.group)
        await self.consumer.start()
        self.consumer.subscribe([self.topics.alerts], listener=_LaneListener(self))

    async def run(self) -> None:
        """Read, hand each alert to its subject's chain, commit what is settled; until cancelled."""
        assert self.consumer is not None
        while True:
            room = self.settings.max_pending - self.in_flight
            owned = self.consumer.assignment()
            if room <= 0:  # full: keep polling (the group's poll interval) without fetching
                self.consumer.pause(*owned)
            else:
                self.consumer.resume(*owned)
            generation = self.generation
            found = await self.consumer.getmany(timeout_ms=500, max_records=max(1, min(room, 500)))
            async with self.lock:
                owned = self.consumer.assignment()
                for tp, records in sorted(found.items()):
                    if tp not in owned:
                        continue  # revoked: its next owner reads it from the last commit
                    start = self.starts.get(tp)
                    if generation != self.generation and not self.pending.get(tp) and start is not None:
                        # a rebalance came during the fetch: read again from where the assignment starts
                        self.consumer.seek(tp, start)
                        continue
                    for record in records:
                        self._admit(tp, record)
            self.metrics.delivery_pending.labels(target=self.label).set(self.in_flight)
            if time.monotonic() - self.last_commit >= COMMIT_EVERY:
                await self.commit()

    def _admit(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        entry = _Entry(record.offset)
        self.pending.setdefault(tp, deque()).append(entry)
        try:
            alert = Alert.decode(record.value or b"")
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            task = asyncio.create_task(self._undecodable(entry, record, exc))
            self.tasks.setdefault(tp, set()).add(task)
            task.add_done_callback(self.tasks[tp].discard)
            return
        subject = (tp, f"{alert.scope}{SEP}{alert.key}")
        task = asyncio.create_task(self._deliver(entry, alert, self.chains.get(subject)))
        self.chains[subject] = task
        self.tasks.setdefault(tp, set()).add(task)
        task.add_done_callback(lambda done: self._forget(tp, subject, done))

    def _forget(self, tp: TopicPartition, subject: tuple[TopicPartition, str], task: asyncio.Task[None]) -> None:
        self.tasks.get(tp, set()).discard(task)
        if self.chains.get(subject) is task:
            del self.chains[subject]
        self.settled.set()

    async def _deliver(self, entry: _Entry, alert: Alert, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # in order per subject; the previous one's fate is its own
        assert self.session is not None
        try:
            result = await deliver(
                alert, self.target, self.session, self.policy, self.rng, sleep=self._backoff, slots=self.slots
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an odd target: the alert is dead-lettered, the partition goes on
            log.exception("delivery of %s to %s failed", alert.alert_id, self.label)
            result = Delivery(self.label, "failed", 0, detail=f"{type(exc).__name__}: {exc}"[:300])
        self.metrics.deliveries.labels(target=self.label, outcome=result.outcome).inc()
        self.metrics.delivery_seconds.observe(result.seconds)
        if result.outcome != "delivered":
            await self._dead_letter(alert, result)
        entry.done = True

    async def _backoff(self, seconds: float) -> None:
        """A retry, counted as it begins (a target down for hours shows its retries while they happen)."""
        self.metrics.delivery_retries.labels(target=self.label).inc()
        await asyncio.sleep(seconds)

    async def _dead_letter(self, alert: Alert, result: Delivery) -> None:
        failure = DeliveryFailure(
            target=self.label, outcome=result.outcome, detail=result.detail, attempts=result.attempts
        )
        letter = AlertDeadLetter(alert=alert, failures=(failure,))
        key = SEP.join((alert.alert_id, alert.status, self.label)).encode()
        await self._write(self.topics.alerts_dlq, key, letter.encode())
        self.metrics.alerts_dead.inc()
        log.warning("alert %s not delivered to %s (%s): in %s", alert.alert_id, self.label, result.detail,
                    self.topics.alerts_dlq)  # fmt: skip

    async def _undecodable(self, entry: _Entry, record: ConsumerRecord[bytes, bytes], exc: Exception) -> None:
        if self.letters_for_undecodable:
            letter = DeadLetter("schema", f"not an Alert record: {exc}", record.value or b"", record.topic,
                                record.partition, record.offset, record.key)  # fmt: skip
            await self._write(self.topics.dlq, record.key, dead_letter_bytes(letter))
            self.metrics.dead_letters.labels(reason="schema").inc()
        entry.done = True

    async def _write(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Until the cluster takes it: the offset cannot pass an alert that is neither delivered nor here."""
        assert self.producer is not None
        while True:
            try:
                await self.producer.send_and_wait(topic, value, key=key)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: cannot write to %s yet (%s); trying again", self.group, topic, exc)
                await asyncio.sleep(LETTER_RETRY)

    def _settled(self, tp: TopicPartition) -> int | None:
        """The offset after the longest run of settled alerts at the head of ``tp``, or None."""
        entries = self.pending.get(tp)
        last = None
        while entries and entries[0].done:
            last = entries.popleft().offset
        return None if last is None else last + 1

    async def commit(self, partitions: list[TopicPartition] | None = None) -> None:
        assert self.consumer is not None
        self.last_commit = time.monotonic()
        offsets = {}
        for tp in partitions if partitions is not None else list(self.pending):
            offset = self._settled(tp)
            if offset is not None and offset > self.committed.get(tp, -1):
                offsets[tp] = offset
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self.committed.update(offsets)
        except Exception as exc:  # a rebalance under way or the cluster away: sent again by the next owner
            log.warning("%s: commit refused (%s); those alerts are delivered again", self.group, exc)

    async def drop(self, partitions: list[TopicPartition]) -> int:
        """Cancel the deliveries of ``partitions``, commit what is settled, forget them; the number unsettled."""
        self.generation += 1
        tasks = [task for tp in partitions for task in self.tasks.get(tp, ())]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.commit(partitions)
        left = 0
        for tp in partitions:
            left += len(self.pending.pop(tp, ()))
            self.tasks.pop(tp, None)
            self.committed.pop(tp, None)
        for subject in [s for s in self.chains if s[0] in partitions]:
            del self.chains[subject]
        return left

    async def stop(self) -> None:
        """Cancel what is in flight, commit what is settled, close; say what is left for the next start."""
        left = self.in_flight
        try:

            async def settle() -> None:
                nonlocal left
                async with self.lock:
                    left = await self.drop(list(self.pending))

            if not await within(settle(), STOP_SECONDS):
                log.warning("%s: could not commit on the way out (a broker does not answer)", self.group)
        except Exception as exc:  # the cluster gone: the last commit stands
            log.warning("%s: could not commit on the way out: %s", self.group, exc)
        if left:
            log.warning("%s: %d alerts not yet delivered to %s; delivered after the next start", self.group, left,
                        self.label)  # fmt: skip
        await close_all([self.consumer, self.producer, self.session], STOP_SECONDS / 2, self.group)


class _LaneListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """A rebalance never waits on a target: deliveries of revoked partitions are cancelled at once."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lane.lock:
            await self.lane.drop(list(revoked))
        self.lane.metrics.delivery_partitions.labels(target=self.lane.label).set(0)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        lane = self.lane
        assert lane.consumer is not None
        async with lane.lock:  # whatever is still held of these partitions is read again from the commit
            await lane.drop([tp for tp in assigned if tp in lane.pending])
        lane.metrics.delivery_partitions.labels(target=lane.label).set(len(lane.consumer.assignment()))
        fresh = []
        for tp in assigned:
            committed = await lane.consumer.committed(tp)
            if committed is None:
                fresh.append(tp)
            else:
                lane.committed[tp] = lane.starts[tp] = committed
        if fresh:  # a target delivered to for the first time: the recent alerts, not the topic's history
            since = int((time.time() - lane.settings.replay_seconds) * 1000)
            found = await lane.consumer.offsets_for_times(dict.fromkeys(fresh, since))
            ends = await lane.consumer.end_offsets(fresh)
            for tp in fresh:
                lane.starts[tp] = found[tp].offset if found.get(tp) is not None else ends[tp]
                lane.consumer.seek(tp, lane.starts[tp])


class DeliveryService(Service):
    """The lanes of every target, started and stopped with the app that runs them."""

    def __init__(self, lanes: list[Lane], **kwargs: Any) -> None:
        self.lanes = lanes
        self.running: list[asyncio.Task[None]] = []
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        for lane in self.lanes:
            await lane.start()
        self.running = [asyncio.create_task(self._run(lane)) for lane in self.lanes]

    async def _run(self, lane: Lane) -> None:
        while True:
            try:
                await lane.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: delivery interrupted; going on from what is settled", lane.group)
                await asyncio.sleep(1.0)

    async def on_stop(self) -> None:
        for task in self.running:
            task.cancel()
        await within(asyncio.gather(*self.running, return_exceptions=True), STOP_SECONDS)
        await asyncio.gather(*(lane.stop() for lane in self.lanes))


def delivery_service(
    kafka: KafkaSettings,
    stream: StreamSettings,
    topics: TopicSettings,
    settings: AlertSettings,
    metrics: WorkerMetrics,
    **kwargs: Any,
) -> DeliveryService:
    metrics.delivery_targets([t.label for t in settings.targets])
    lanes = [
        Lane(kafka, stream, topics, settings, target, metrics, letters_for_undecodable=index == 0)
        for index, target in enumerate(settings.targets)
    ]
    return DeliveryService(lanes, **kwargs)
