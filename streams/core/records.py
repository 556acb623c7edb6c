"""The records that travel between finmon's topics (JSON, UTF-8, one per Kafka message)."""

from __future__ import annotations

import base64
import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from alerts.records import Headline, Record

SCHEMA_VERSION = 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(record: Any) -> bytes:
    """Strict JSON in UTF-8 (no NaN: orjson writes a non-finite float as null); raises
    ``orjson.JSONEncodeError`` on what JSON cannot hold (a lone surrogate, nesting deeper than 254)."""
    return orjson.dumps(record)


@dataclass(frozen=True)
class NewsDocument:
    """A decoded, valid input document; unknown fields ride along in ``extra``."""

    id: str
    published_at: datetime
    source: str
    title: str
    body: str
    url: str | None = None
    lang: str | None = None
    tickers: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(part for part in (self.title.strip(), self.body.strip()) if part)


@dataclass(frozen=True)
class DeadLetter:
    """Why a message could not be used, with the original bytes (or, when too large, only their size)
    and where they came from."""

    reason: str
    detail: str
    original: bytes
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    original_size: int | None = None  # set when the original is left out (too large): find it by offset

    def by_reference(self) -> DeadLetter:
        """The same letter without the original bytes (found by its topic, partition and offset)."""
        size = len(self.original) if self.original_size is None else self.original_size
        return dataclasses.replace(self, original=b"", original_size=size)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "reason": self.reason,
            "detail": _SURROGATE.sub("\ufffd", self.detail[:1000]),  # a detail may quote what JSON cannot hold
            "original_base64": base64.b64encode(self.original).decode("ascii"),
            "original_bytes": len(self.original) if self.original_size is None else self.original_size,
            "original_omitted": self.original_size is not None,
            "key_base64": base64.b64encode(self.key).decode("ascii") if self.key is not None else None,
            "source_topic": self.topic,
            "source_partition": self.partition,
            "source_offset": self.offset,
            "received_at": iso(self.received_at),
        }


def scored_record(
    document: NewsDocument,
    prediction: dict[str, Any],
    tickers: list[str],
    scored_at: datetime,
    entities: list[dict[str, Any]] | None = None,
    lang: str | None = None,
) -> dict[str, Any]:
    """The ``news.scored`` record for a document and the model's answer; unknown input fields ride along.
    ``tickers`` are what trends count (given, cashtags, linked subjects); ``entities`` every company found;
    ``lang`` the language the model was chosen by (the document's field, or its script's)."""
    return {
        **document.extra,
        "schema_version": SCHEMA_VERSION,
        "id": document.id,
        "published_at": iso(document.published_at),
        "source": document.source,
        "title": document.title,
        "lang": lang or document.lang,
        "tickers": tickers,
        "entities": entities or [],
        "topic": prediction["topic"],
        "topic_scores": prediction["topic_scores"],
        "sentiment": prediction["sentiment"],
        "sentiment_scores": prediction["sentiment_scores"],
        "score": prediction["score"],
        "model_version": prediction["model_version"],
        "scored_at": iso(scored_at),
    }


@dataclass(frozen=True, slots=True)
class TrendEvent:
    """A scored document as one window scope counts it. The worker packs the events of a batch that
    go to one partition of ``<app>-trend-events`` into one message (``pack_events``)."""

    scope: str
    key: str
    id: str
    published: float  # published_at, seconds since the epoch
    sentiment: str
    score: float
    title: str = ""
    tickers: tuple[str, ...] = ()


def pack_events(events: list[TrendEvent]) -> bytes:
    """Many trend events in one message: a JSON array of arrays, in field order."""
    return orjson.dumps([[e.scope, e.key, e.id, e.published, e.sentiment, e.score, e.title, e.tickers] for e in events])


def unpack_events(raw: bytes) -> list[TrendEvent]:
    """The events of a packed message; raises ValueError (or TypeError) when it is not one."""
    rows = orjson.loads(raw)
    if not isinstance(rows, list):
        raise ValueError("a packed trend-events message is a JSON array")
    events = [
        TrendEvent(str(s), str(k), str(i), float(p), str(sent), float(sc), str(t), tuple(map(str, tk)))
        for s, k, i, p, sent, sc, t, tk in rows
    ]
    for event in events:
        if event.sentiment not in ("negative", "neutral", "positive") or event.scope not in ("topic", "ticker"):
            raise ValueError(f"not a trend event: scope {event.scope[:20]!r}, sentiment {event.sentiment[:20]!r}")
    return events


class Counts(Record):
    negative: int = 0
    neutral: int = 0
    positive: int = 0


class Trend(Record):
    """A ``sentiment.trends`` record: one window of one key (a topic or a ticker), updated while
    open and published once more as ``final`` at its close. ``unique_*`` count a repost once."""

    schema_version: int = SCHEMA_VERSION
    scope: str
    key: str
    window: str
    window_start: str
    window_end: str
    counts: Counts
    total: int
    negative_share: float
    mean_score: float
    unique_counts: Counts
    unique_total: int
    unique_negative_share: float
    headlines: tuple[Headline, ...] = ()
    top_tickers: tuple[str, ...] = ()
    final: bool = False
    model_version: str | None = None
