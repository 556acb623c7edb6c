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

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from models.text import script_language
from streams.cluster.closing import close_all
from streams.core.records import SCHEMA_VERSION, iso
from streams.ingest.fetch import Client, FetchError, Response, backoff, origin
from streams.ingest.parse import ParseError, Story, article, canonical, feed_stories, json_stories, sitemap_pages
from streams.ingest.sources import FEED_KINDS, Source
from streams.settings import IngestSettings, KafkaSettings, TopicSettings
from streams.worker.metrics import IngestMetrics

log = logging.getLogger("streams.ingest")
SITEMAPS_PER_POLL = 10
SEND_STOP_SECONDS = 10.0  # what a poll's transaction may still take when its source is taken away
PAGE_WAIT_SECONDS = 5.0  # a page whose host asks for a longer pause waits for a later poll
PARK_SECONDS = 24 * 3600.0  # a page robots.txt refuses, or that is gone, is asked again a day later
PRUNE_EVERY = 600.0  # seconds between forgetting the stories the state topic has deleted
GONE = ("http_404", "http_410")
CLOSE_SECONDS = 5.0  # what one Kafka client may take to stop before it is left behind


def story_id(source: Source, story: Story) -> str:
    """A stable id: the item's own guid (within its source), else its canonical link, else its source,
    title and time. The same story read again, by any replica, gets the same id."""
    if story.guid and not story.guid.startswith(("http://", "https://")):
        basis = f"guid\0{source.name}\0{story.guid}"
    elif story.url or story.guid:  # a permalink guid is a link: one story whichever feed carries it
        basis = f"url\0{canonical(story.guid if story.guid and not story.url else story.url or '')}"
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
    """The source's headers (its credentials) go to its own origins only (scheme and host), never to
    a page or a sitemap elsewhere; the client drops them on a redirect to another origin."""
    own = {origin(address) for address in (source.url, *source.urls) if address}
    return headers if headers and origin(url) in own else None


def _script(text: str) -> str | None:
    found = script_language(text)
    return None if found == "und" else found


@dataclass
class Poll:
    """What one poll found."""

    stories: list[tuple[str, Story]] = field(default_factory=list)  # (id, story), new ones only
    refresh: list[str] = field(default_factory=list)  # ids still listed whose state record ages out
    fetched: int = 0
    duplicate: int = 0
    invalid: int = 0
    not_modified: bool = False
    fetched_at: datetime | None = None
    validators: tuple[str, Response] | None = None  # kept once the poll is delivered
    complete: bool = True  # False: pages wait for a later poll, so the next GET is not conditional


class Fatal(Exception):
    """This replica cannot go on safely (fenced, a producer in a fatal state, a failed rebalance):
    it exits non-zero and its orchestrator starts it afresh."""


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
        owner = self.owner
        metrics = owner.metrics
        await asyncio.sleep(owner.rng.uniform(0, min(1.0, self.source.interval)))
        while True:
            started = time.monotonic()
            try:
                poll = await owner.poll(self.source)
                async with self.sending:
                    await owner.send(self.source, self.partition, poll)
            except FetchError as exc:  # the host's own backoff (Retry-After, failures) paces the next request
                wait = self.failed(exc.reason, exc.detail, exponential=False)
                if wait is None:
                    return
                await asyncio.sleep(wait)
                continue
            except ParseError as exc:
                await asyncio.sleep(self.failed(exc.reason, exc.detail) or self.source.interval)
                continue
            except Fatal as exc:
                owner.fatal(f"source {name}: {exc}")
                return
            except KafkaError as exc:  # the transaction was aborted: nothing of it is read; polled again
                log.warning("source %s: could not send to Kafka (%s); polling again", name, exc)
                metrics.failures.labels(source=name, reason="kafka").inc()
                metrics.polls.labels(source=name, outcome="failed").inc()
                await asyncio.sleep(min(self.source.interval, 5.0))
                continue
            except Exception as exc:  # a body no parser foresaw: this source backs off, the others go on
                log.exception("source %s: failed unexpectedly", name)
                await asyncio.sleep(self.failed("internal", f"{type(exc).__name__}: {exc}") or self.source.interval)
                continue
            if poll.validators is not None and poll.complete:  # delivered: a 304 may now stand for it
                owner.client.remember(*poll.validators)
            self.failures = self.gone_answers = 0
            metrics.polls.labels(source=name, outcome="not_modified" if poll.not_modified else "ok").inc()
            owner.succeeded(name)
            if poll.stories:
                log.info("source %s: %d new of %d", name, len(poll.stories), poll.fetched)
            await asyncio.sleep(max(0.0, started + self.source.interval - time.monotonic()))

    def failed(self, reason: str, detail: str, exponential: bool = True) -> float | None:
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
            self.owner.gone.add(name)
            metrics.gone.labels(source=name).set(1)
            return None
        settings = self.owner.settings
        wait = self.source.interval
        if exponential:
            wait = max(wait, backoff(self.failures, settings.backoff_base, settings.backoff_max, self.owner.rng))
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
        self.seen: dict[str, float] = {}  # every story id on the state topic, whoever sent it -> when
        self.retention = settings.state_retention_days * 86400  # the state topic deletes records this old
        self.refresh_after = self.retention / 2  # a still-listed story's state is re-written
        self.pruned_at = time.time()
        self.held: set[int] = set()
        self.loading: dict[TopicPartition, int] = {}  # the state read to these offsets before sources start
        self.loops: dict[str, SourceLoop] = {}
        self.gone: set[str] = set()  # given up on until a restart, whichever partitions this replica holds
        self.last_success: dict[str, float] = {}
        self.parked: dict[str, float] = {}  # page id -> when it may be asked again (robots, gone)
        self.producers: dict[int, AIOKafkaProducer] = {}
        self.transactions: dict[int, asyncio.Lock] = {}  # one transaction at a time per producer
        self.consumer: AIOKafkaConsumer | None = None  # the group: which partitions, so which sources, are ours
        self.reader: AIOKafkaConsumer | None = None  # the whole state topic, outside the group
        self.joined = False  # the group gave this replica its partitions (maybe none: a standby)
        self.failure: str | None = None  # why this replica stopped itself (Fatal)
        self._stopping: asyncio.Event | None = None
        self._rebalance = asyncio.Lock()

    # --- Kafka side -----------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        from streams.cluster.topics import client_options

        return client_options(self.kafka)

    def fatal(self, reason: str) -> None:
        """Stop this replica, saying why: its partitions go to another, or to it once restarted."""
        if self.failure is None:
            self.failure = reason
            log.error("%s; stopping so that this replica starts afresh", reason)
        if self._stopping is not None:
            self._stopping.set()

    def succeeded(self, name: str) -> None:
        self.last_success[name] = time.time()
        self.metrics.last_success.labels(source=name).set(self.last_success[name])

    async def run(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
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
                if time.time() - self.pruned_at > PRUNE_EVERY:
                    self.prune(time.time())
                if self.loading:
                    batches = await self.reader.getmany(timeout_ms=300, max_records=10_000)
                    for records in batches.values():
                        self.seen.update((r.key.decode(), r.timestamp / 1000) for r in records if r.key is not None)
                    await self._loaded()
        finally:
            await self.stop()

    def prune(self, now: float) -> None:
        """Forget what the state topic has deleted by now, so a replica that runs for months stays small.

        A story still listed is re-written at half the retention, so only stories no source lists go.
        """
        cutoff = now - self.retention
        self.seen = {doc_id: sent for doc_id, sent in self.seen.items() if sent >= cutoff}
        ticks = time.monotonic()
        self.parked = {page: until for page, until in self.parked.items() if until > ticks}
        self.pruned_at = now
        self.metrics.state_records.set(len(self.seen))

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
        return self.joined and not self.loading and self.failure is None

    def _start_sources(self, partition: int) -> None:
        for source in self.sources:
            if partition_of(source.name, self.partitions) != partition or source.name in self.loops:
                continue
            self.metrics.take(source.name, source.interval, self.last_success.get(source.name, time.time()))
            if source.name in self.gone:
                self.metrics.gone.labels(source=source.name).set(1)
                continue
            loop = self.loops[source.name] = SourceLoop(self, source, partition)
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
        the whole topic the first time, what is new after that. A failure here stops the replica
        (aiokafka would only log it, and the partitions would stay held and unpolled)."""
        try:
            await self._assign(partitions)
        except Exception as exc:
            self.fatal(f"could not take partitions {sorted(tp.partition for tp in partitions)}: {exc!r}")

    async def _assign(self, partitions: set[TopicPartition]) -> None:
        assert self.consumer is not None and self.reader is not None
        async with self._rebalance:
            topic = self.topics.ingest_state
            every = sorted(self.consumer.partitions_for_topic(topic) or {0})  # known once assigned
            self.partitions = len(every)
            self.held = {tp.partition for tp in partitions}
            # fresh producers every time: one left in an error state is never reused, and a transaction
            # of ours still in flight is settled before the state's end is read
            await asyncio.gather(*(self._close_producer(p) for p in list(self.producers)))
            for partition in sorted(self.held):
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
        for source in self.sources:
            self.metrics.drop(source.name)
        self.metrics.owned.set(0)

    async def _close_producer(self, partition: int) -> None:
        await close_all([self.producers.pop(partition)], CLOSE_SECONDS, f"ingest partition {partition}")

    async def stop(self) -> None:
        """Sources first (a transaction under way ends, or is abandoned after SEND_STOP_SECONDS: never
        committed, so never read), then the Kafka clients together, each bounded: within the stop deadline."""
        await self._stop_sources()
        await asyncio.gather(
            *(self._close_producer(p) for p in list(self.producers)),
            # the group's consumer leaves it: another replica takes the sources now
            close_all([self.consumer, self.reader], CLOSE_SECONDS, "ingest state consumers"),
        )
        await self.client.close()

    # --- HTTP side ------------------------------------------------------------------------------

    async def poll(self, source: Source) -> Poll:
        """Fetch a source and tell its new stories from the ones sent before; pages read as needed.
        Parsing runs off the event loop: a large feed never holds the other sources or the heartbeats."""
        headers = source.resolved_headers()
        poll = Poll(fetched_at=self.clock())
        found: list[Story] = []
        if source.kind == "pages":
            found = [Story(None, page, "", "", None) for page in source.urls]
        else:
            url = source.url or ""
            response = await self.client.get(url, headers, robots=source.kind == "sitemap")
            if response.not_modified:
                poll.not_modified = True
                return poll
            poll.validators = (url, response)
            if source.kind in FEED_KINDS:
                found, poll.invalid = await asyncio.to_thread(
                    feed_stories, response.body, response.content_type, response.url, source
                )
            elif source.kind == "json":
                found, poll.invalid = await asyncio.to_thread(
                    json_stories, response.body, response.url, source, response.content_type
                )
            else:
                found = await self._sitemap(source, response, headers)
        poll.fetched = len(found) + poll.invalid
        now = time.time()
        fresh: dict[str, Story] = {}
        for story in found:
            try:
                doc_id = story_id(source, story)
            except ValueError:  # a link no id can be made of
                poll.invalid += 1
                continue
            sent = self.seen.get(doc_id)
            if sent is not None or doc_id in fresh:
                poll.duplicate += 1
                if sent is not None and now - sent > self.refresh_after:
                    poll.refresh.append(doc_id)
            else:
                fresh[doc_id] = story
        if source.reads_pages:
            fresh = await self._read_pages(source, fresh, headers, poll)
        poll.stories = list(fresh.items())
        return poll

    async def _sitemap(self, source: Source, response: Response, headers: dict[str, str]) -> list[Story]:
        listing = await asyncio.to_thread(sitemap_pages, response.body, response.url, source, response.content_type)
        pages = list(listing.pages)
        for child in listing.sitemaps[:SITEMAPS_PER_POLL]:
            try:
                answer = await self.client.get(
                    child, _same_host(source, child, headers), conditional=False, robots=True
                )
                pages += (
                    await asyncio.to_thread(sitemap_pages, answer.body, answer.url, source, answer.content_type)
                ).pages
            except (FetchError, ParseError) as exc:
                self.metrics.failures.labels(source=source.name, reason=exc.reason).inc()
                log.warning("source %s: sitemap %s: %s", source.name, child, exc.detail)
        return pages

    async def _read_pages(
        self, source: Source, fresh: dict[str, Story], headers: dict[str, str], poll: Poll
    ) -> dict[str, Story]:
        """Each new story's page read for its text. A feed story whose page cannot be read now goes
        with the feed's own text; a sitemap or list page waits for a later poll. At most max_articles
        pages a poll, none on a host that asks for a pause, none past the poll's time budget; a page
        robots.txt refuses, or that is gone, is asked again a day later."""
        kept: dict[str, Story] = {}
        fetched = 0
        budget = time.monotonic() + max(60.0, source.interval)
        for doc_id, story in fresh.items():
            needs_page = source.kind in ("sitemap", "pages")
            parked = self.parked.get(doc_id, 0.0) > time.monotonic()
            waits = story.url is not None and self.client.host_wait(story.url) > PAGE_WAIT_SECONDS
            if not story.url or parked or waits or fetched >= self.settings.max_articles or time.monotonic() > budget:
                if not needs_page:
                    kept[doc_id] = story
                elif not parked:
                    poll.complete = False  # asked at a later poll, which must not be answered by a 304
                continue
            try:
                response = await self.client.get(
                    story.url, _same_host(source, story.url, headers), conditional=False, robots=True
                )
                fetched += 1
                page = await asyncio.to_thread(article, response.body, response.content_type, response.url, source.zone)
            except FetchError as exc:
                outcome = "robots" if exc.reason == "robots" else "failed"
                fetched += exc.reason != "robots"
                self.metrics.pages.labels(source=source.name, outcome=outcome).inc()
                log.info("source %s: page %s: %s", source.name, story.url, exc.detail)
                if exc.reason in ("robots", *GONE):
                    self.parked[doc_id] = time.monotonic() + PARK_SECONDS
                if not needs_page:
                    kept[doc_id] = story
                elif exc.reason not in ("robots", *GONE):
                    poll.complete = False
                continue
            if page is None:
                self.metrics.pages.labels(source=source.name, outcome="empty").inc()
                if not needs_page or story.title:
                    kept[doc_id] = story
                else:
                    self.parked[doc_id] = time.monotonic() + PARK_SECONDS
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
        """A poll's new stories and their state records (and the re-written state of stories still
        listed), in one transaction: every send acknowledged before the commit, or the whole aborted.
        Counted once committed."""
        name = source.name
        if poll.stories or poll.refresh:
            producer = self.producers.get(partition)
            if producer is None:
                raise Fatal(f"no producer for partition {partition}: this replica no longer holds it")
            fetched = poll.fetched_at or self.clock()
            async with self.transactions.setdefault(partition, asyncio.Lock()):
                await self._transaction(producer, source, partition, poll, fetched)
            sent_at = time.time()
            self.seen.update((doc_id, sent_at) for doc_id, _ in poll.stories)
            self.seen.update((doc_id, sent_at) for doc_id in poll.refresh)
            self.metrics.state_records.set(len(self.seen))
        metrics = self.metrics
        metrics.fetched.labels(source=name).inc(poll.fetched)
        metrics.new.labels(source=name).inc(len(poll.stories))
        metrics.duplicate.labels(source=name).inc(poll.duplicate)
        metrics.invalid.labels(source=name).inc(poll.invalid)

    async def _transaction(
        self, producer: AIOKafkaProducer, source: Source, partition: int, poll: Poll, fetched: datetime
    ) -> None:
        state = orjson.dumps({"source": source.name, "sent_at": iso(fetched)})
        try:
            await producer.begin_transaction()
        except Exception as exc:  # the producer is in a state no transaction can start from
            raise Fatal(f"the producer of partition {partition} cannot begin a transaction: {exc!r}") from exc
        try:
            sends = []
            for doc_id, story in poll.stories:
                record = news_record(source, story, doc_id, fetched, self.max_text_chars, source.url or story.url or "")
                sends.append(await producer.send(self.topics.news, orjson.dumps(record), key=doc_id.encode()))
                sends.append(
                    await producer.send(self.topics.ingest_state, state, key=doc_id.encode(), partition=partition)
                )
            for doc_id in poll.refresh:
                sends.append(
                    await producer.send(self.topics.ingest_state, state, key=doc_id.encode(), partition=partition)
                )
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
            refused = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if refused is not None:  # a record the cluster refused aborts the whole poll
                raise refused
            await producer.commit_transaction()
        except ProducerFenced as exc:
            _settle(sends)
            raise Fatal(f"fenced on partition {partition}: another replica holds it now") from exc
        except BaseException:
            _settle(sends)
            try:
                async with asyncio.timeout(5.0):
                    await asyncio.shield(producer.abort_transaction())
            except Exception as exc:
                raise Fatal(f"the producer of partition {partition} cannot abort a transaction: {exc!r}") from exc
            raise


def _settle(sends: list[asyncio.Future[Any]]) -> None:
    """The sends of a failed transaction fail too: their errors are this one, retrieved, not logged again."""
    for future in sends:
        if future.done():
            if not future.cancelled():
                future.exception()
        else:
            future.add_done_callback(lambda f: None if f.cancelled() else f.exception())


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
