"""The Faust worker: three short agents and a timer wired around the plain pipeline code.

news --score--> news.scored (+ news.dlq) --fan out per scope--> <app>-trend-events (keyed by scope|key)
--windows (changelogged tables)--> sentiment.trends, with a timer that closes windows on the clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.transport.drivers import aiokafka as kafka_driver
from faust.types import TP

from alerts.settings import AlertSettings
from models.runtime import Classifier
from streams.cluster.topics import tls_context
from streams.core.decode import Limits
from streams.core.gaps import GapGuard
from streams.core.records import dumps
from streams.core.scoring import Message, score_batch
from streams.core.windows import SEP, TrendWindows, scope_keys, window_specs
from streams.settings import KafkaSettings, StreamSettings, TopicSettings, WindowSettings
from streams.worker.alerting import add_delivery, add_detection
from streams.worker.health import serve_metrics
from streams.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


def broker_url(kafka: KafkaSettings) -> str:
    servers = (kafka.bootstrap_servers or "").replace(" ", "")
    return ";".join(f"kafka://{server}" for server in servers.split(",") if server)


def credentials(kafka: KafkaSettings) -> Any:
    """SASL/TLS options passed through to the Kafka client; None for plaintext."""
    context = tls_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context else None


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class IdempotentProducer(kafka_driver.Producer):
    """faust asks aiokafka for idempotence only inside transactions; finmon wants it on every send."""

    def _settings_extra(self) -> Any:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class IdempotentTransport(kafka_driver.Transport):
    Producer = IdempotentProducer


class WorkerApp(faust.App):
    """A faust App whose producer is idempotent unless ``idempotent=False``."""

    def __init__(self, *args: Any, idempotent: bool = True, **options: Any) -> None:
        self.idempotent = idempotent
        super().__init__(*args, **options)

    def _new_transport(self) -> Any:
        if not self.idempotent:
            return super()._new_transport()
        return IdempotentTransport(self.conf.broker_consumer, self)


def base_app(kafka: KafkaSettings, topics: TopicSettings, stream: StreamSettings, app_id: str) -> faust.App:
    """A faust App connected by the settings, with /metrics-friendly web settings and no autodiscovery."""
    return WorkerApp(
        app_id,
        idempotent=stream.idempotent_producer,
        processing_guarantee=stream.processing_guarantee,
        broker=broker_url(kafka),
        broker_credentials=credentials(kafka),
        store="memory://",
        topic_partitions=topics.partitions,
        topic_replication_factor=topics.replication,
        broker_session_timeout=stream.session_timeout,
        broker_heartbeat_interval=stream.heartbeat_interval,
        producer_linger=stream.producer_linger,
        web_bind=stream.web_host,
        web_port=stream.web_port,
        web_host=stream.web_host,
        datadir=stream.data_dir,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        web_in_thread=False,
    )


def create_worker(
    kafka: KafkaSettings,
    topics: TopicSettings,
    stream: StreamSettings,
    windows: WindowSettings,
    classifier: Classifier,
    metrics: WorkerMetrics,
    clock: Callable[[], float] = time.time,
    alerting: AlertSettings | None = None,
) -> faust.App:
    """A configured faust App; run it with faust.Worker."""
    app = base_app(kafka, topics, stream, stream.app_id)
    raw: dict[str, Any] = {
        "key_serializer": "raw",
        "value_serializer": "raw",
        "partitions": topics.partitions,
        "replicas": topics.replication,
    }
    news = app.topic(topics.news, **raw)
    scored = app.topic(topics.scored, **raw)
    dlq = app.topic(topics.dlq, **raw)
    trends = app.topic(topics.trends, **raw)
    trend_events_name = f"{stream.app_id}-trend-events"
    trend_events = app.topic(trend_events_name, internal=True, **raw)
    table: dict[str, Any] = {"partitions": topics.partitions, "key_type": str}
    buckets = app.Table("trend-buckets", default=None, **table)
    seen = app.Table("trend-seen", default=None, **table)
    state = TrendWindows(buckets, seen, window_specs(windows), windows.grace_seconds, windows.max_future_seconds)
    limits = Limits(stream.max_message_bytes, stream.max_text_chars)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finmon-inference")
    pending: dict[int, deque[tuple[Any, str]]] = defaultdict(deque)  # expired state to delete, by partition
    info = classifier.describe()
    metrics.model(info["version"], info["provider"], info["precision"], info["requested_device"])
    serve_metrics(app, metrics)

    guard = GapGuard()

    async def start_offsets(partitions: list[int]) -> dict[int, int]:
        """The group's committed offset of each news partition, or its log start before any commit."""
        tps = [TP(topics.news, p) for p in partitions]
        committed = {tp: app.consumer._committed_offset.get(tp) for tp in tps}  # type: ignore[attr-defined]
        missing = [tp for tp, offset in committed.items() if offset is None]
        earliest = await app.consumer.earliest_offsets(*missing) if missing else {}
        starts = {tp.partition: committed[tp] if committed[tp] is not None else earliest.get(tp) for tp in tps}
        return {p: int(offset) for p, offset in starts.items() if offset is not None}

    async def read_again(partition: int, offset: int, why: str) -> None:
        log.warning("news partition %d: offsets from %d %s; reading them again", partition, offset, why)
        metrics.reread_ranges.inc()
        await app.consumer.seek(TP(topics.news, partition), offset)

    @app.timer(interval=stream.gap_check_interval)
    async def check_tails() -> None:
        # a dropped tail is followed by nothing that would show the jump: find quiet partitions short of their end
        if app.rebalancing or app.consumer is None:
            return
        generation = app.consumer_generation_id
        owned = [tp.partition for tp in app.consumer.assignment() if tp.topic == topics.news]
        guard.start(generation, await start_offsets(guard.unknown(generation, owned)))
        ends = {p: app.consumer.highwater(TP(topics.news, p)) for p in owned}
        for partition, offset in guard.stalled(generation, {p: int(e) for p, e in ends.items() if e is not None}):
            await read_again(partition, offset, "never arrived")

    @app.agent(news)
    async def score(events_stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for events in events_stream.take_events(stream.batch_max, within=stream.batch_within):
            messages = [
                Message(
                    e.message.value,
                    e.message.key,
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.message.timestamp,
                )
                for e in events
            ]
            metrics.consumed.inc(len(messages))
            guard.scoring = True
            try:
                generation = events[0].message.generation_id
                offsets = [(int(m.partition or 0), int(m.offset or 0)) for m in messages]
                guard.start(generation, await start_offsets(guard.unknown(generation, [p for p, _ in offsets])))
                for partition, offset in guard.check(generation, offsets):
                    await read_again(partition, offset, "were skipped")
                result = await loop.run_in_executor(executor, score_batch, messages, classifier, limits)
                scored_out, dead_out = result.outputs()
                sent = [await scored.send(key=k, value=v, timestamp=ts) for k, v, ts in scored_out]
                sent += [await dlq.send(key=k, value=v) for k, v in dead_out]
                await asyncio.gather(*sent)  # offsets commit only after every output is acknowledged
                metrics.observe_inference(result.timings)
                now = clock()
                for doc, record in result.scored:
                    metrics.scored.labels(topic=record["topic"], sentiment=record["sentiment"]).inc()
                    metrics.event_to_scored.observe(max(0.0, now - doc.published_at.timestamp()))
                for message in messages:
                    if message.timestamp:
                        metrics.ingest_to_scored.observe(max(0.0, now - message.timestamp))
                for letter in result.dead:
                    metrics.dead_letters.labels(reason=letter.reason).inc()
            finally:
                guard.scoring = False

    @app.agent(scored)
    async def fan_out(events_stream: Any) -> None:
        # a batch at a time: its trend events leave in one produce request, not one per record
        async for events in events_stream.take_events(stream.batch_max, within=stream.batch_within):
            sent = []
            for event in events:
                sent += await trend_events_of(json.loads(event.value))
            await asyncio.gather(*sent)  # offsets commit only after every output is acknowledged

    async def trend_events_of(record: dict[str, Any]) -> list[Any]:
        sent = []
        for scope, key in scope_keys(record):
            event = {
                "scope": scope,
                "key": key,
                "id": record["id"],
                "published_at": record["published_at"],
                "sentiment": record["sentiment"],
                "score": record["score"],
                "title": record.get("title", ""),
                "tickers": record.get("tickers", []),
            }
            sent.append(await trend_events.send(key=f"{scope}{SEP}{key}".encode(), value=dumps(event)))
        return sent

    @app.agent(trend_events)
    async def window(events_stream: faust.StreamT) -> None:
        async for event in events_stream.events():
            item = json.loads(event.value)
            if item.get("expire"):  # a tick: deletions may only be written while an event of their partition is current
                drain(event.message.partition)
                continue
            moment = faust.utils.iso8601.parse(item["published_at"]).timestamp()
            outcome = state.add(
                item["scope"],
                item["key"],
                item["id"],
                moment,
                item["sentiment"],
                float(item["score"]),
                clock(),
                item.get("title", ""),
                item.get("tickers", []),
                (event.message.partition, event.message.offset),
            )
            metrics.window_events.labels(scope=item["scope"], outcome=outcome.reason).inc()
            drain(event.message.partition)

    def drain(partition: int) -> None:
        queue = pending[partition]
        for _ in range(min(200, len(queue))):
            mapping, key = queue.popleft()
            mapping.pop(key, None)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget(_: Any, revoked: set[TP], **kwargs: Any) -> None:
        # the new owner of a partition lists its expired state itself; a queue left here would never drain
        for tp in revoked:
            if tp.topic == trend_events_name:
                pending.pop(tp.partition, None)

    last_expiry = [0.0]
    tumbling = window_specs(windows)[0].name
    watch = frozenset(t.upper() for t in windows.watch_tickers)

    @app.timer(interval=windows.emit_interval)
    async def emit() -> None:
        now = clock()
        records = state.updates(now) + state.close(now)
        sent = [await trends.send(key=f"{r['scope']}{SEP}{r['key']}".encode(), value=dumps(r)) for r in records]
        await asyncio.gather(*sent)
        for r in records:
            metrics.trend_records.labels(final=str(r["final"]).lower()).inc()
            if r["final"] and r["window"] == tumbling:
                metrics.closed_window(r, watch)
        for partition in [p for p, queue in pending.items() if queue]:  # idle partitions drain on a tick
            await trend_events.send(key=b"", value=dumps({"expire": True}), partition=partition)
        metrics.window_state_keys.set(len(buckets) + len(seen))
        if now - last_expiry[0] >= windows.expiry_interval and not any(pending.values()):
            last_expiry[0] = now
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == trend_events_name}
            for mapping, key in state.expired(now):
                scope, name, _ = key.split(SEP, 2)
                partition = partition_of(f"{scope}{SEP}{name}".encode(), topics.partitions)
                if partition in owned:  # another worker's partition is that worker's to expire
                    pending[partition].append((mapping, key))

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        metrics.assigned_partitions.set(assigned)
        ready = assigned > 0
        body = {"status": "ready" if ready else "starting", "model": info, "assigned_partitions": assigned}
        return web.json(body, status=200 if ready else 503)

    if alerting is not None and alerting.enabled:
        add_detection(app, topics, alerting, window_specs(windows)[0].name, metrics, info["version"])
        if alerting.targets:
            add_delivery(app, topics, alerting, metrics)
    app.finmon_state = state  # type: ignore[attr-defined]
    return app
