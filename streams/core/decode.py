"""Decoding a ``news`` message: a NewsDocument, or a DeadLetter with a short reason code.

Bad data is a value here, never an exception: the worker dead-letters it and keeps going.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.core.records import DeadLetter, NewsDocument
from streams.errors import Rejected

REASONS = (
    "empty_message",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "schema",
    "empty_text",
    "inference_error",
    "processing_error",
    "output_refused",
)
_SURROGATE = re.compile("[\ud800-\udfff]")
KNOWN_FIELDS = {"schema_version", "id", "published_at", "source", "title", "body", "url", "lang", "tickers"}
MAX_ID_CHARS = 256
MAX_TICKERS_GIVEN = 64


@dataclass(frozen=True)
class Limits:
    """Input limits; beyond them a document is dead-lettered as ``too_large``."""

    max_message_bytes: int = 1_048_576
    max_text_chars: int = 100_000


def decode(
    raw: bytes | None,
    limits: Limits = Limits(),
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | None = None,
) -> NewsDocument | DeadLetter:
    """Turn message bytes into a document, or say precisely why not."""
    original = raw or b""
    try:
        return _decode(original, limits)
    except Rejected as rejected:
        if rejected.reason == "too_large":  # by reference (topic, partition, offset): not copied whole
            return DeadLetter(
                rejected.reason, rejected.detail, b"", topic, partition, offset, key, original_size=len(original)
            )
        return DeadLetter(rejected.reason, rejected.detail, original, topic, partition, offset, key)


def _decode(raw: bytes, limits: Limits) -> NewsDocument:
    if not raw:
        raise Rejected("empty_message", "the message has no value")
    if len(raw) > limits.max_message_bytes:
        raise Rejected("too_large", f"message is {len(raw)} bytes; the limit is {limits.max_message_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("invalid_utf8", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        data = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise Rejected("invalid_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise Rejected("invalid_json", "JSON nested too deeply") from None
    except _NotJson as exc:
        raise Rejected("invalid_json", str(exc)) from None
    if not isinstance(data, dict):
        raise Rejected("schema", f"expected a JSON object, got {type(data).__name__}")
    return _document(data, limits)


class _NotJson(ValueError):
    pass


def _not_json(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259); a record carrying them could not be written as strict JSON."""
    raise _NotJson(f"{name} is not a JSON value")


def _string(data: dict[str, Any], name: str, required: bool = False) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise Rejected("schema", f"missing required field {name!r}")
        return ""
    if not isinstance(value, str):
        raise Rejected("schema", f"field {name!r} must be a string, got {type(value).__name__}")
    if _SURROGATE.search(value):
        raise Rejected("invalid_utf8", f"field {name!r} contains an unpaired surrogate")
    return value


def parse_time(value: str) -> datetime:
    """RFC 3339 with an explicit offset; naive times are rejected, the result is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("schema", f"published_at {value[:64]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Rejected("schema", f"published_at {value[:64]!r} has no UTC offset (naive times are rejected)")
    return moment.astimezone(UTC)


def _document(data: dict[str, Any], limits: Limits) -> NewsDocument:
    doc_id = _string(data, "id", required=True).strip()
    if not doc_id:
        raise Rejected("schema", "field 'id' is empty")
    if len(doc_id) > MAX_ID_CHARS:
        raise Rejected("schema", f"field 'id' is longer than {MAX_ID_CHARS} characters")
    published_at = parse_time(_string(data, "published_at", required=True))
    title, body = _string(data, "title"), _string(data, "body")
    if not (title.strip() or body.strip()):
        raise Rejected("empty_text", "title and body are both empty")
    if len(title) + len(body) > limits.max_text_chars:
        raise Rejected(
            "too_large", f"text is {len(title) + len(body)} characters; the limit is {limits.max_text_chars}"
        )
    tickers = data.get("tickers") or []
    if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers):
        raise Rejected("schema", "field 'tickers' must be a list of strings")
    if len(tickers) > MAX_TICKERS_GIVEN:
        raise Rejected("schema", f"field 'tickers' has more than {MAX_TICKERS_GIVEN} entries")
    extra = {k: v for k, v in data.items() if k not in KNOWN_FIELDS}
    if extra:
        _writable(extra)
    return NewsDocument(
        id=doc_id,
        published_at=published_at,
        source=_string(data, "source"),
        title=title,
        body=body,
        url=_string(data, "url") or None,
        lang=_string(data, "lang") or None,
        tickers=tuple(tickers),
        extra=extra,
    )


def _writable(extra: dict[str, Any]) -> None:
    """Unknown fields ride along on news.scored, so they must be writable as strict JSON: no lone
    surrogate, no nesting deeper than the encoder's limit, no integer beyond 64 bits."""
    try:
        orjson.dumps(extra)
    except orjson.JSONEncodeError as exc:
        raise Rejected("schema", f"an unknown field cannot be written as JSON: {exc}") from None
