"""Analyst feedback: the record a correction becomes, and its export as training data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.labels import SENTIMENT_LABELS, TOPIC_LABELS

MAX_TEXT = 10_000
TRAINING_FIELDS = ("text", "sentiment", "topic", "id", "verdict", "analyst", "model_version", "at")


class FeedbackError(ValueError):
    """A submitted correction cannot be used; the message says which field and why."""


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


def feedback_record(payload: object, now: datetime | None = None) -> dict[str, Any]:
    """Validate what the page sent; the analyst's labels, the model's labels, who and when."""
    if not isinstance(payload, dict):
        raise FeedbackError("expected a JSON object")
    record = {
        "schema_version": 1,
        "id": _text(payload, "id", 300),
        "text": _text(payload, "text", MAX_TEXT),
        "model_topic": _label(payload, "model_topic", TOPIC_LABELS, required=False),
        "model_sentiment": _label(payload, "model_sentiment", SENTIMENT_LABELS),
        "model_version": _text(payload, "model_version", 200, required=False),
        "topic": _label(payload, "topic", TOPIC_LABELS),
        "sentiment": _label(payload, "sentiment", SENTIMENT_LABELS),
        "analyst": _text(payload, "analyst", 100, required=False),
        "at": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    agreed = record["topic"] in (record["model_topic"], None) and record["sentiment"] == record["model_sentiment"]
    record["verdict"] = "confirmed" if agreed else "corrected"
    return record


def training_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One training example per document (its latest review), in the format `finmon train` reads."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        if isinstance(record, dict) and record.get("id") and record.get("text"):
            latest[str(record["id"])] = record
    return [{name: r.get(name) for name in TRAINING_FIELDS} for r in latest.values()]
