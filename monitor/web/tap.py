"""Feeds the board from the topics, outside any consumer group: every worker shows the whole stream.

Scored news is read from the end (the feed is live), trends and alerts from a little before the
end (the charts have history at once), feedback from the start (agreement is over all reviews).
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.web.board import Board
from streams.settings import KafkaSettings, TopicSettings
from streams.topics import client_options

log = logging.getLogger(__name__)
TREND_BACKLOG = 5000
ALERT_BACKLOG = 500


async def tap(kafka: KafkaSettings, topics: TopicSettings, board: Board, stop: asyncio.Event) -> None:
    """Read until ``stop`` is set; reconnects after broker errors instead of giving up."""
    while not stop.is_set():
        consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)  # type: ignore[arg-type]
        try:
            await consumer.start()
            await _assign(consumer, topics)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=300, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        _route(board, topics, tp.topic, record.value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker may be away; the page keeps its last state
            log.warning("dashboard feed interrupted: %s; retrying", exc)
            await asyncio.sleep(2)
        finally:
            await consumer.stop()


async def _assign(consumer: AIOKafkaConsumer, topics: TopicSettings) -> None:
    existing = await consumer.topics()
    wanted = {topics.scored: None, topics.trends: TREND_BACKLOG, topics.alerts: ALERT_BACKLOG, topics.feedback: -1}
    tps = [
        TopicPartition(name, p)
        for name in wanted
        if name in existing
        for p in sorted(consumer.partitions_for_topic(name) or ())
    ]
    consumer.assign(tps)
    low = await consumer.beginning_offsets(tps)
    high = await consumer.end_offsets(tps)
    for tp in tps:
        backlog = wanted[tp.topic]
        if backlog is None:
            consumer.seek(tp, high[tp])
        elif backlog < 0:
            consumer.seek(tp, low[tp])
        else:
            consumer.seek(tp, max(low[tp], high[tp] - backlog))


def _route(board: Board, topics: TopicSettings, topic: str, value: bytes | None) -> None:
    if value is None:
        return
    if topic == topics.scored:
        board.add_scored(value)
        return
    try:
        record = json.loads(value)
    except ValueError:
        return
    if not isinstance(record, dict):
        return
    if topic == topics.trends:
        board.add_trend(record)
    elif topic == topics.alerts:
        board.add_alert(record)
    elif topic == topics.feedback:
        board.add_feedback(record)
