"""``finmon ingest``: polls the sources, sends each story once to the news topic.

Replicas share the sources through a consumer group on the state topic: a source belongs to the
partition its name hashes to, and a replica polls the sources of the partitions it holds. Before it
polls them it reads the state topic to its end (what was sent, by anyone, for as long as the state is
kept: the topic is compacted, one record per story), so a source that moves between partitions
after the sources file changed still knows its stories. A poll's new stories and their state records go in one Kafka
transaction, whose transactional id is the partition's, so a replica that lost a partition while it
hung is fenced off and its half-sent poll is aborted, never read (consumers of news read committed).
A restart, a second replica or a rebalance therefore never re-sends a story; the worker's id dedup
is the second line of defence.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from models.text import script_language
from streams.core.records import SCHEMA_VERSION, iso
from streams.ingest.fetch import Client, FetchError, backoff
from streams.ingest.parse import ParseError, Story, article, canonical, feed_stories, json_stories, sitemap_pages
from streams.ingest.sources import FEED_KINDS, Source
from streams.settings import IngestSettings, KafkaSettings, TopicSettings
from streams.worker.metrics import IngestMetrics

log = logging.getLogger("streams.ingest")
SITEMAPS_PER_POLL = 10
SEND_STOP_SECONDS = 10.0  # what a poll's transaction may still take when its source is taken away
GONE = ("http_404", "http_410")


def story_id(source: Source, story: Story) -> str:
    """A stable id: the item's own guid (within its source), else its canonical link, else its source,
    title and time. The same story read again, by any replica, gets the same id."""
    if story.guid:
        basis = f"guid\0{source.name}\0{story.guid}"
    elif story.url:
        basis = f"url\0{canonical(story.url)}"
    else:
        basis = f"text\0{source.name}\0{story.title}\0{story.body[:200]}\0{story.published or ''}"
    return hashlib.blake2b(basis.encode(), digest_size=16).hexdigest()


def partition_of(name: str, partitions: int) -> int:
    return zlib.crc32(name.encode()) % partitions


def news_record(
    source: Source, story: Story, doc_id: str, fetched: datetime, max_chars: int, url: str
) -> dict[str, Any]:
    """The news record of a story (DESIGN.md's news contract); a missing time is the fetch time, and
    the record says which it is."""
    title = story.title[:max_chars]
    body = story.body[: max(0, max_chars - len(title))]
    text = f"{title} {body}"
    lang = source.lang or story.lang or _script(text)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "id": doc_id,
        "published_at": iso(story.published or fetched),
        "published_at_from": "item" if story.published else "fetched",
        "source": source.name,
        "title": title,
        "body": body,
        "ingested_at": iso(fetched),
        "feed": url,
    }
    if story.url:
        record["url"] = story.url
    if lang:
        record["lang"] = lang.strip().replace("_", "-")
    if len(story.title) + len(story.body) > len(title) + len(body):
        record["truncated"] = True
    return record


def _same_host(source: Source, url: str, headers: dict[str, str]) -> dict[str, str] | None:
    """The source's headers (its credentials) go to its own host only, never to a page elsewhere."""
    own = {urlsplit(address).netloc.lower() for address in (source.url, *source.urls) if address}
    return headers if headers and urlsplit(url).netloc.lower() in own else None


def _script(text: str) -> str | None:
    found = script_language(text)
    return None if found == "und" else found


@dataclass
class Poll:
    """What one poll found."""

    stories: list[tuple[str, Story]] = field(default_factory=list)  # (id, story), new ones only
    fetched: int = 0
    duplicate: int = 0
    invalid: int = 0
    not_modified: bool = False


class SourceLoop:
    """Polls one source until stopped: at its interval, later after failures, never again once gone."""

    def __init__(self, owner: Ingester, source: Source, partition: int) -> None:
        self.owner = owner
        self.source = source
        self.partition = partition
        self.failures = 0
        self.gone_answers = 0
        self.sending = asyncio.Lock()  # held while a poll's transaction runs: a stop waits for it
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"ingest:{self.source.name}")

    async def stop(self) -> None:
        if self.task is None:
            return
        try:
            async with asyncio.timeout(SEND_STOP_SECONDS):
                async with self.sending:  # a transaction under way ends first (committed or aborted)
                    self.task.cancel()
        except TimeoutError:
            log.warning("source %s: its send did not end within %.0f s; cancelled", self.source.name, SEND_STOP_SECONDS)
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def run(self) -> None:
        name = self.source.name
        metrics = self.owner.metrics
        await asyncio.sleep(self.owner.rng.uniform(0, min(1.0, self.source.interval)))
        while True:
            started = time.monotonic()
            try:
                poll = await self.owner.poll(self.source, self.partition)
                async with self.sending:
                    await self.owner.send(self.source, self.partition, poll)
            except (FetchError, ParseError) as exc:
                wait = self.failed(exc.reason, exc.detail)
                if wait is None:
                    return
                await asyncio.sleep(wait)
                continue
            except ProducerFenced:
                log.warning("source %s: another replica holds partition %d now; stopping here", name, self.partition)
                return
            except KafkaError as exc:  # the poll is aborted and fetched again: nothing was sent
                log.warning("source %s: could not send to Kafka (%s); polling again", name, exc)
                metrics.failures.labels(source=name, reason="kafka").inc()
                metrics.polls.labels(source=name, outcome="failed").inc()
                await asyncio.sleep(min(self.source.interval, 5.0))
                continue
            except Exception as exc:  # a body no parser foresaw: this source backs off, the others go on
                log.exception("source %s: failed unexpectedly", name)
                wait = self.failed("internal", f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(wait or self.source.interval)
                continue
            self.failures = self.gone_answers = 0
            metrics.polls.labels(source=name, outcome="not_modified" if poll.not_modified else "ok").inc()
            metrics.last_success.labels(source=name).set(time.time())
            if poll.stories:
                log.info("source %s: %d new of %d", name, len(poll.stories), poll.fetched)
            await asyncio.sleep(max(0.0, started + self.source.interval - time.monotonic()))

    def failed(self, reason: str, detail: str) -> float | None:
        """Count and log a failed poll; the seconds until the next, or None when the source is gone."""
        name = self.source.name
        metrics = self.owner.metrics
        metrics.failures.labels(source=name, reason=reason).inc()
        metrics.polls.labels(source=name, outcome="failed").inc()
        self.failures += 1
        self.gone_answers = self.gone_answers + 1 if reason in GONE else 0
        if self.gone_answers >= self.owner.settings.gone_after:
            log.error(
                "source %s: gone (%s, %d polls in a row); no longer polled until finmon ingest restarts",
                name,
                detail,
                self.gone_answers,
            )
            metrics.gone.labels(source=name).set(1)
            return None
        settings = self.owner.settings
        wait = max(
            self.source.interval, backoff(self.failures, settings.backoff_base, settings.backoff_max, self.owner.rng)
        )
        if reason in GONE:
            wait = self.source.interval
        log.warning("source %s: %s (%s); next poll in %.0f s", name, reason, detail, wait)
        return wait


class Ingester:
    """Owns the Kafka clients, the HTTP client and one SourceLoop per source it holds."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings,
        settings: IngestSettings,
        sources: list[Source],
        metrics: IngestMetrics,
        group: str,
        max_text_chars: int = 100_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kafka = kafka
        self.topics = topics
        self.settings = settings
        self.sources = sources
        self.metrics = metrics
        self.group = group
        self.max_text_chars = max_text_chars
        self.clock = clock
        self.rng = random.Random()
        self.client = Client(settings, rng=self.rng)
        self.partitions = 1
        self.seen: set[str] = set()  # every story id on the state topic, whoever sent it
        self.held: set[int] = set()
        self.loading: dict[TopicPartition, int] = {}  # the state read to these offsets before sources start
        self.loops: dict[str, SourceLoop] = {}
        self.producers: dict[int, AIOKafkaProducer] = {}
        self.transactions: dict[int, asyncio.Lock] = {}  # one transaction at a time per producer
        self.consumer: AIOKafkaConsumer | None = None  # the group: which partitions, so which sources, are ours
        self.reader: AIOKafkaConsumer | None = None  # the whole state topic, outside the group
        self.joined = False  # the group gave this replica its partitions (maybe none: a standby)
        self._rebalance = asyncio.Lock()

    # --- Kafka side -----------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        from streams.cluster.topics import client_options

        return client_options(self.kafka)

    async def run(self, stopping: asyncio.Event) -> None:
        await self.client.start()
        self.reader = AIOKafkaConsumer(
            **self.options(), group_id=None, enable_auto_commit=False, isolation_level="read_committed"
        )
        self.consumer = AIOKafkaConsumer(
            **self.options(),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            isolation_level="read_committed",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )
        await self.reader.start()
        await self.consumer.start()
        try:
            self.consumer.subscribe([self.topics.ingest_state], listener=_Listener(self))
            while not stopping.is_set():
                await self.consumer.getmany(timeout_ms=200)  # paused: nothing comes, the membership stays
                if self.loading:
                    batches = await self.reader.getmany(timeout_ms=300, max_records=10_000)
                    for records in batches.values():
                        self.seen.update(r.key.decode() for r in records if r.key is not None)
                    await self._loaded()
        finally:
            await self.stop()

    async def _loaded(self) -> None:
        """Once the state is read to the offsets of the last assignment, the held partitions' sources start."""
        assert self.reader is not None
        async with self._rebalance:
            for tp, end in self.loading.items():
                if await self.reader.position(tp) < end:
                    return
            self.loading.clear()
            self.metrics.state_records.set(len(self.seen))
            for partition in sorted(self.held):
                self._start_sources(partition)

    @property
    def ready(self) -> bool:
        """In the group, and the state read: its sources (if any) are polled."""
        return self.joined and not self.loading

    def _start_sources(self, partition: int) -> None:
        for source in self.sources:
            if partition_of(source.name, self.partitions) != partition or source.name in self.loops:
                continue
            loop = self.loops[source.name] = SourceLoop(self, source, partition)
            self.metrics.take(source.name, source.interval, time.time())
            loop.start()
        self.metrics.owned.set(len(self.loops))
        log.info(
            "partition %d of %s: polling %s (%d stories known as sent)",
            partition,
            self.topics.ingest_state,
            ", ".join(n for n, loop in self.loops.items() if loop.partition == partition) or "nothing",
            len(self.seen),
        )

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """Fence whoever held these partitions (their open polls abort), then read the state to its end:
        the whole topic the first time, what is new after that."""
        assert self.consumer is not None and self.reader is not None
        async with self._rebalance:
            topic = self.topics.ingest_state
            every = sorted(self.consumer.partitions_for_topic(topic) or {0})  # known once assigned
            self.partitions = len(every)
            self.held = {tp.partition for tp in partitions}
            for partition in set(self.producers) - self.held:
                await self._close_producer(partition)
            for partition in self.held - set(self.producers):
                producer = AIOKafkaProducer(
                    **self.options(),
                    transactional_id=f"{self.group}-{partition}",
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=10,
                )
                await producer.start()  # fences whoever held this partition before, aborting its open poll
                self.producers[partition] = producer
            state = [TopicPartition(topic, p) for p in every]
            if set(self.reader.assignment()) != set(state):
                self.reader.assign(state)
                await self.reader.seek_to_beginning(*state)
            self.loading = dict(await self.reader.end_offsets(state))
            self.consumer.pause(*partitions)
            self.joined = True
            log.info("holding partitions %s of %s", sorted(self.held) or "none", topic)

    async def revoked(self) -> None:
        async with self._rebalance:
            self.joined = False
            await self._stop_sources()
            self.loading.clear()

    async def _stop_sources(self) -> None:
        loops, self.loops = self.loops, {}
        await asyncio.gather(*(loop.stop() for loop in loops.values()))
        for name in loops:
            self.metrics.drop(name)
        self.metrics.owned.set(0)

    async def _close_producer(self, partition: int) -> None:
        producer = self.producers.pop(partition)
        try:
            async with asyncio.timeout(5.0):
                await producer.stop()
        except (TimeoutError, KafkaError) as exc:
            log.warning("closing the producer of partition %d: %r", partition, exc)

    async def stop(self) -> None:
        """Sources first (a transaction under way ends, or is abandoned after SEND_STOP_SECONDS: never
        committed, so never read), then the Kafka clients together, each bounded: within the stop deadline."""
        await self._stop_sources()
        await asyncio.gather(*(self._close_producer(p) for p in list(self.producers)))

        async def close(consumer: AIOKafkaConsumer) -> None:
            try:
                async with asyncio.timeout(5.0):
                    await consumer.stop()  # the group's leaves it: another replica takes the sources now
            except (TimeoutError, KafkaError) as exc:
                log.warning("closing a state consumer: %r", exc)

        await asyncio.gather(*(close(c) for c in (self.consumer, self.reader) if c is not None))
        await self.client.close()

    # --- HTTP side ------------------------------------------------------------------------------

    async def poll(self, source: Source, partition: int) -> Poll:
        """Fetch a source and tell its new stories from the ones sent before; pages read as needed."""
        headers = source.resolved_headers()
        found: list[Story] = []
        invalid = 0
        url = source.url or ""
        if source.kind == "pages":
            found = [Story(None, page, "", "", None) for page in source.urls]
        else:
            response = await self.client.get(url, headers, robots=source.kind == "sitemap")
            if response.not_modified:
                return Poll(not_modified=True)
            if source.kind in FEED_KINDS:
                found, invalid = feed_stories(response.body, response.content_type, response.url, source)
            elif source.kind == "json":
                found, invalid = json_stories(response.body, response.url, source)
            else:
                found = await self._sitemap(source, response.url, response.body, headers)
        known = self.seen
        poll = Poll(fetched=len(found) + invalid, invalid=invalid)
        fresh: dict[str, Story] = {}
        for story in found:
            doc_id = story_id(source, story)
            if doc_id in known or doc_id in fresh:
                poll.duplicate += 1
            else:
                fresh[doc_id] = story
        if source.reads_pages:
            fresh = await self._read_pages(source, fresh, headers)
        poll.stories = list(fresh.items())
        return poll

    async def _sitemap(self, source: Source, url: str, body: bytes, headers: dict[str, str]) -> list[Story]:
        listing = sitemap_pages(body, url, source)
        pages = list(listing.pages)
        for child in listing.sitemaps[:SITEMAPS_PER_POLL]:
            try:
                response = await self.client.get(child, headers, robots=True)
            except FetchError as exc:
                self.metrics.failures.labels(source=source.name, reason=exc.reason).inc()
                log.warning("source %s: sitemap %s: %s", source.name, child, exc.detail)
                continue
            if not response.not_modified:
                pages += sitemap_pages(response.body, response.url, source).pages
        return pages

    async def _read_pages(self, source: Source, fresh: dict[str, Story], headers: dict[str, str]) -> dict[str, Story]:
        """Each new story's page read for its text. A feed story whose page cannot be read goes with
        the feed's own text; a sitemap or list page waits for the next poll (up to max_articles a poll)."""
        kept: dict[str, Story] = {}
        fetched = 0
        for doc_id, story in fresh.items():
            needs_page = source.kind in ("sitemap", "pages")
            if not story.url or fetched >= self.settings.max_articles:
                if not needs_page:
                    kept[doc_id] = story
                continue
            fetched += 1
            try:
                response = await self.client.get(story.url, _same_host(source, story.url, headers), robots=True)
                page = (
                    None
                    if response.not_modified
                    else await asyncio.to_thread(
                        article, response.body, response.content_type, response.url, source.zone
                    )
                )
            except FetchError as exc:
                outcome = "robots" if exc.reason == "robots" else "failed"
                self.metrics.pages.labels(source=source.name, outcome=outcome).inc()
                log.info("source %s: page %s: %s", source.name, story.url, exc.detail)
                if not needs_page:
                    kept[doc_id] = story
                continue
            if page is None:
                self.metrics.pages.labels(source=source.name, outcome="empty").inc()
                if not needs_page or story.title:
                    kept[doc_id] = story
                continue
            self.metrics.pages.labels(source=source.name, outcome="ok").inc()
            kept[doc_id] = Story(
                guid=story.guid,
                url=story.url,
                title=story.title or page.title,
                body=page.text,
                published=story.published or page.published,
                lang=story.lang,
            )
        return kept

    async def send(self, source: Source, partition: int, poll: Poll) -> None:
        """A poll's new stories and their state records, in one transaction; counted once committed."""
        name = source.name
        if poll.stories:
            producer = self.producers[partition]
            fetched = self.clock()
            async with self.transactions.setdefault(partition, asyncio.Lock()), producer.transaction():
                for doc_id, story in poll.stories:
                    record = news_record(
                        source, story, doc_id, fetched, self.max_text_chars, source.url or story.url or ""
                    )
                    await producer.send(self.topics.news, orjson.dumps(record), key=doc_id.encode())
                    state = {"source": name, "sent_at": iso(fetched), "url": story.url}
                    await producer.send(
                        self.topics.ingest_state, orjson.dumps(state), key=doc_id.encode(), partition=partition
                    )
            self.seen.update(doc_id for doc_id, _ in poll.stories)
            self.metrics.state_records.set(len(self.seen))
        metrics = self.metrics
        metrics.fetched.labels(source=name).inc(poll.fetched)
        metrics.new.labels(source=name).inc(len(poll.stories))
        metrics.duplicate.labels(source=name).inc(poll.duplicate)
        metrics.invalid.labels(source=name).inc(poll.invalid)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, ingester: Ingester) -> None:
        self.ingester = ingester

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.ingester.revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.ingester.assigned(assigned)


def state_topic_config(settings: IngestSettings) -> dict[str, str]:
    retention = timedelta(days=settings.state_retention_days)
    return {"cleanup.policy": "compact,delete", "retention.ms": str(int(retention.total_seconds() * 1000))}
