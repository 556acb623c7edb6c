"""Analyst feedback: the record a correction becomes, and its export as training data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from monitor.errors import FeedbackError

MAX_TEXT = 10_000
TRAINING_FIELDS = ("text", "sentiment", "topic", "id", "verdict", "analyst", "model_version", "at")


def _text(payload: dict[str, Any], name: str, limit: int, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FeedbackError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise FeedbackError(f"{name} must be a string")
    if len(value) > limit:
        raise FeedbackError(f"{name} is longer than {limit} characters")
    return value.strip()


def _label(payload: dict[str, Any], name: str, labels: tuple[str, ...], required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if value not in labels:
        raise FeedbackError(f"{name} must be one of: {', '.join(labels)}")
    return str(value)


@dataclass(frozen=True)
class FeedbackRecord:
    """An analyst's review of one document (the ``feedback`` topic): their labels beside the model's."""

    id: str
    text: str
    model_sentiment: str
    sentiment: str
    verdict: str = ""  # confirmed | corrected
    at: str | None = None  # RFC 3339; records written by other tools may lack it
    model_topic: str | None = None
    topic: str | None = None
    model_version: str | None = None
    analyst: str | None = None
    schema_version: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def encode(self) -> bytes:
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | dict[str, Any]) -> FeedbackRecord:
        data = json.loads(raw) if isinstance(raw, bytes | str) else raw
        if not isinstance(data, dict):
            raise FeedbackError("a feedback record is a JSON object")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError as exc:
            raise FeedbackError(f"not a feedback record: {exc}") from None


def feedback_record(payload: object, now: datetime | None = None, analyst: str | None = None) -> FeedbackRecord:
    """Validate what the page sent: the analyst's labels, the model's labels; who is the signed-in
    analyst (whatever name the page sends), when is now."""
    if not isinstance(payload, dict):
        raise FeedbackError("expected a JSON object")
    model_topic = _label(payload, "model_topic", TOPIC_LABELS, required=False)
    model_sentiment = _label(payload, "model_sentiment", SENTIMENT_LABELS)
    # a headline shown under a ticker alert has no model topic: the analyst may judge its sentiment alone
    topic = _label(payload, "topic", TOPIC_LABELS, required=model_topic is not None)
    sentiment = _label(payload, "sentiment", SENTIMENT_LABELS)
    agreed = topic in (model_topic, None) and sentiment == model_sentiment
    return FeedbackRecord(
        id=str(_text(payload, "id", 300)),
        text=str(_text(payload, "text", MAX_TEXT)),
        model_topic=model_topic,
        model_sentiment=str(model_sentiment),
        model_version=_text(payload, "model_version", 200, required=False),
        topic=topic,
        sentiment=str(sentiment),
        analyst=analyst,
        at=(now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        verdict="confirmed" if agreed else "corrected",
    )


def training_rows(records: list[FeedbackRecord]) -> list[dict[str, Any]]:
    """One training example per document (its latest review), in the format `finmon train` reads."""
    latest = {record.id: record for record in records if record.id and record.text}
    return [{name: getattr(r, name) for name in TRAINING_FIELDS} for r in latest.values()]
