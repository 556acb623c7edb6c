"""One batch through decode -> classify -> tag, as plain code shared by the worker and batch jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.errors import ModelError
from models.routing import Router
from models.runtime import Classifier, Prediction, Timings
from models.text import language_of
from streams.core.companies import Linker, linker_for, subjects
from streams.core.decode import Limits, decode
from streams.core.records import DeadLetter, NewsDocument, dumps, scored_record
from streams.core.tickers import MAX_TICKERS, tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """The parts of a Kafka message the pipeline needs."""

    value: bytes | None
    key: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    timestamp: float | None = None


# A scored record's Kafka timestamp is its published_at, within these bounds of the clock: brokers
# refuse timestamps far ahead (Apache Kafka 4 by default beyond an hour), and time-based retention
# would delete a record stamped older than itself at once. Outside them it is the scoring time.
TIMESTAMP_AHEAD = 300.0
TIMESTAMP_BEHIND = 7 * 86400.0


def message_time(doc: NewsDocument, now: float) -> float:
    published = doc.published_at.timestamp()
    return published if now - TIMESTAMP_BEHIND <= published <= now + TIMESTAMP_AHEAD else now


# What one Kafka record may hold: aiokafka's and Apache Kafka's default limit is 1,000,000 bytes for a
# request's record, less the record's own framing. A larger output is dead-lettered by reference.
MAX_OUTPUT_BYTES = 990_000


@dataclass(frozen=True)
class Output:
    """One record to write: where, what, and the news message it accounts for (None for bookkeeping)."""

    topic: str
    key: bytes | None
    value: bytes | None  # None deletes the key (a compacted topic's tombstone)
    timestamp: float | None = None
    partition: int | None = None
    source: Message | None = None


@dataclass
class BatchResult:
    scored: list[tuple[NewsDocument, dict[str, Any]]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    sources: dict[str, Message] = field(default_factory=dict)  # document id -> its message

    def encoded(
        self, limit: int = MAX_OUTPUT_BYTES
    ) -> tuple[list[tuple[NewsDocument, dict[str, Any], bytes]], list[tuple[DeadLetter, bytes]]]:
        """Each scored record as strict JSON, and each dead letter; a scored record that cannot be
        written (too large, or what JSON cannot hold) becomes a dead letter instead, alone."""
        scored, dead = [], list(self.dead)
        for doc, record in self.scored:
            message = self.sources.get(doc.id) or Message(None)
            try:
                value = dumps(record)
            except Exception as exc:  # orjson refuses what strict JSON cannot hold
                dead.append(letter_for(message, "processing_error", f"the scored record cannot be written: {exc}"))
                continue
            if len(value) + len(doc.id.encode()) > limit:
                dead.append(
                    letter_for(message, "too_large", f"the scored record is {len(value)} bytes; the limit is {limit}")
                )
                continue
            scored.append((doc, record, value))
        return scored, [(letter, dead_letter_bytes(letter, limit)) for letter in dead]


def letter_for(message: Message, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(
        reason, detail, message.value or b"", message.topic, message.partition, message.offset, message.key
    )


def dead_letter_bytes(letter: DeadLetter, limit: int = MAX_OUTPUT_BYTES) -> bytes:
    """A dead letter as strict JSON; by reference (``original_omitted``) when the original would not fit."""
    value = dumps(letter.as_dict())
    if len(value) + len(letter.key or b"") > limit:
        value = dumps(letter.by_reference().as_dict())
    return value


def score_batch(
    messages: Sequence[Message],
    classifier: Router | Classifier,
    limits: Limits,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    linker: Linker | None = None,
) -> BatchResult:
    """Score what decodes; dead-letter what does not, and any document whose classification or
    linking fails, alone: a failed batch is split until the failing document is found.
    Companies are linked with ``linker`` (the index universe and finmon's aliases when None)."""
    result = BatchResult()
    documents: list[NewsDocument] = []
    for message in messages:
        outcome = decode(
            message.value,
            limits,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
        )
        if isinstance(outcome, DeadLetter):
            result.dead.append(outcome)
        else:
            documents.append(outcome)
            result.sources[outcome.id] = message
    if not documents:
        return result
    languages = [language_of(doc.lang, doc.text) for doc in documents]  # once: routing, codes, the record
    predictions = _predict(classifier, [doc.text for doc in documents], languages, result.timings)
    scored_at = clock()
    linker = linker or linker_for()
    for doc, prediction, language in zip(documents, predictions, languages, strict=True):
        source = result.sources[doc.id]
        if isinstance(prediction, Exception):
            result.dead.append(letter_for(source, "inference_error", str(prediction)))
            continue
        try:
            tagged = tag(doc.text, doc.tickers, language)
            entities = linker.link(doc.title, doc.body, tagged)
            tickers = list(dict.fromkeys([*tagged, *subjects(entities)]))[:MAX_TICKERS]
            found = [e.as_dict() for e in entities]
            record = scored_record(doc, prediction.as_dict(), tickers, scored_at, found, language)
        except Exception as exc:  # a bug met by one document must not take the batch with it
            log.exception("document %s could not be tagged", doc.id[:80])
            result.dead.append(letter_for(source, "processing_error", f"{type(exc).__name__}: {exc}"))
            continue
        result.scored.append((doc, record))
    return result


def _predict(
    classifier: Router | Classifier, texts: list[str], languages: list[str], timings: Timings
) -> list[Prediction | Exception]:
    """One prediction per text, or the error that text alone raises: a batch that fails is split in
    two and each half tried again, so one poison text costs log2(batch) extra calls, not the batch."""
    try:
        return list(classifier.predict(texts, timings, languages))
    except Exception as exc:  # ModelError, onnxruntime's own errors, anything else: narrowed below
        if len(texts) == 1:
            log.error("inference failed for one document: %s", exc)
            return [exc if isinstance(exc, ModelError) else ModelError(f"{type(exc).__name__}: {exc}")]
        half = len(texts) // 2
        return _predict(classifier, texts[:half], languages[:half], timings) + _predict(
            classifier, texts[half:], languages[half:], timings
        )
