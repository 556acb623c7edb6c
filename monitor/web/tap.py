"""Feeds the board from the topics, outside any consumer group: every worker shows the whole stream.

Scored news is read from the end (the feed is live), trends and alerts from a little before the
end (the charts have history at once), feedback from the start (agreement is over all reviews).
After a broker error the feed reconnects where it was: nothing is read twice.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from alerts.records import Alert
from monitor.web.board import Board
from monitor.web.feedback import FeedbackError, FeedbackRecord
from streams.cluster.closing import close_all
from streams.cluster.topics import client_options
from streams.core.records import Trend
from streams.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)
TREND_BACKLOG = 5000
ALERT_BACKLOG = 500
STOP_SECONDS = 2.5  # what closing each client may take
LOOK_EVERY = 2.0  # seconds between looks for wanted topics that did not exist yet


async def tap(kafka: KafkaSettings, topics: TopicSettings, board: Board, stop: asyncio.Event) -> None:
    """Read until ``stop`` is set; reconnects after broker errors instead of giving up, and picks up
    wanted topics that appear after it started (an operator's, or those of a worker that starts later)."""
    resume: dict[TopicPartition, int] = {}  # where each partition goes on after a reconnect
    while not stop.is_set():
        consumer = AIOKafkaConsumer(  # read_committed: nothing of an aborted transaction is shown
            **client_options(kafka),  # type: ignore[arg-type]
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        admin = AIOKafkaAdminClient(**client_options(kafka))  # type: ignore[arg-type]
        try:
            await consumer.start()
            await admin.start()
            assigned: set[TopicPartition] = set()
            wanted, looked = set(_backlogs(topics)), -LOOK_EVERY
            while not stop.is_set():
                if {tp.topic for tp in assigned} != wanted and time.monotonic() - looked > LOOK_EVERY:
                    assigned, looked = await _assign(consumer, admin, topics, assigned, resume), time.monotonic()
                if not assigned:  # a consumer with nothing assigned would wait for ever
                    await asyncio.sleep(LOOK_EVERY)
                    continue
                batches = await consumer.getmany(timeout_ms=300, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        _route(board, topics, tp.topic, record.value)
                    if records:
                        resume[tp] = records[-1].offset + 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker may be away; the page keeps its last state
            log.warning("dashboard feed interrupted: %s; retrying", exc)
            await asyncio.sleep(2)
        finally:
            await close_all([admin, consumer], STOP_SECONDS, "dashboard feed")


def _backlogs(topics: TopicSettings) -> dict[str, int | None]:
    """Where each topic is read from: None the end, -1 the start, n that many records before the end."""
    return {topics.scored: None, topics.trends: TREND_BACKLOG, topics.alerts: ALERT_BACKLOG, topics.feedback: -1}


async def _assign(
    consumer: AIOKafkaConsumer,
    admin: AIOKafkaAdminClient,
    topics: TopicSettings,
    assigned: set[TopicPartition],
    resume: dict[TopicPartition, int],
) -> set[TopicPartition]:
    """Add the partitions of wanted topics that exist now; those already read keep their positions,
    those read before a reconnect go on from ``resume`` (recorded there once placed).

    Partitions come from the cluster's metadata (the admin client): a consumer that tracks no topic
    knows none. Only listed topics are described, so that looking never creates one."""
    wanted = _backlogs(topics)
    existing = set(await admin.list_topics()) & set(wanted)
    described = await admin.describe_topics(sorted(existing)) if existing else []
    new = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in topic["partitions"]
        if TopicPartition(topic["topic"], partition["partition"]) not in assigned
    ]
    if not new:
        return assigned
    positions = {tp: await consumer.position(tp) for tp in assigned}
    consumer.assign([*assigned, *new])
    for tp, position in positions.items():
        consumer.seek(tp, position)
    low = await consumer.beginning_offsets(new)
    high = await consumer.end_offsets(new)
    for tp in new:
        backlog = wanted[tp.topic]
        if tp in resume:
            consumer.seek(tp, max(low[tp], min(resume[tp], high[tp])))
        elif backlog is None:
            consumer.seek(tp, high[tp])
        elif backlog < 0:
            consumer.seek(tp, low[tp])
        else:
            consumer.seek(tp, max(low[tp], high[tp] - backlog))
        resume.setdefault(tp, await consumer.position(tp))
    return assigned | set(new)


def _route(board: Board, topics: TopicSettings, topic: str, value: bytes | None) -> None:
    if value is None:
        return
    if topic == topics.scored:
        board.add_scored(value)
        return
    try:
        if topic == topics.trends:
            board.add_trend(Trend.decode(value))
        elif topic == topics.alerts:
            board.add_alert(Alert.decode(value))
        elif topic == topics.feedback:
            board.add_feedback(FeedbackRecord.decode(value).as_dict())
    except (ValueError, FeedbackError) as exc:  # a record of another schema: the board shows what it can read
        log.debug("skipped a %s record: %s", topic, exc)
