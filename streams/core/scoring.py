"""One batch through decode -> classify -> tag, as plain code shared by the worker and batch jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.errors import ModelError
from models.routing import Router
from models.runtime import Classifier, Timings
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


@dataclass
class BatchResult:
    scored: list[tuple[NewsDocument, dict[str, Any]]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)

    def outputs(
        self, now: float | None = None
    ) -> tuple[list[tuple[bytes, bytes, float]], list[tuple[bytes | None, bytes]]]:
        """(key, value, timestamp) for the scored topic, (key, value) for the DLQ."""
        now = time.time() if now is None else now
        scored = [(doc.id.encode(), dumps(record), message_time(doc, now)) for doc, record in self.scored]
        dead = [(letter.key, dumps(letter.as_dict())) for letter in self.dead]
        return scored, dead


def score_batch(
    messages: Sequence[Message],
    classifier: Router | Classifier,
    limits: Limits,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    linker: Linker | None = None,
) -> BatchResult:
    """Score what decodes; dead-letter what does not; an inference failure dead-letters its batch.
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
    if not documents:
        return result
    languages = [language_of(doc.lang, doc.text) for doc in documents]  # once: routing, codes, the record
    try:
        predictions = classifier.predict([doc.text for doc in documents], result.timings, languages)
    except ModelError as exc:
        log.error("inference failed for a batch of %d documents: %s", len(documents), exc)
        by_id = {doc.id: doc for doc in documents}
        for message in messages:
            doc_or_letter = decode(message.value, limits)
            if isinstance(doc_or_letter, NewsDocument) and doc_or_letter.id in by_id:
                result.dead.append(
                    DeadLetter(
                        "inference_error",
                        str(exc),
                        message.value or b"",
                        message.topic,
                        message.partition,
                        message.offset,
                        message.key,
                    )
                )
        return result
    scored_at = clock()
    linker = linker or linker_for()
    for doc, prediction, language in zip(documents, predictions, languages, strict=True):
        tagged = tag(doc.text, doc.tickers, language)
        entities = linker.link(doc.title, doc.body, tagged)
        tickers = list(dict.fromkeys([*tagged, *subjects(entities)]))[:MAX_TICKERS]
        found = [e.as_dict() for e in entities]
        record = scored_record(doc, prediction.as_dict(), tickers, scored_at, found, language)
        result.scored.append((doc, record))
    return result
