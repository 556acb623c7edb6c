import json
from datetime import UTC, datetime

import pytest

from streams.core.decode import Limits, decode
from streams.core.records import DeadLetter, NewsDocument

GOOD = {
    "id": "n1",
    "published_at": "2026-11-24T09:30:00+01:00",
    "source": "wire",
    "title": "Acme beats",
    "body": "Shares rise.",
    "tickers": ["acme"],
    "desk": "EU",
}


def encoded(**changes: object) -> bytes:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...}).encode()


def test_a_good_document_decodes_with_utc_time_and_extra_fields() -> None:
    doc = decode(encoded())
    assert isinstance(doc, NewsDocument)
    assert doc.published_at == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert doc.text == "Acme beats Shares rise."
    assert doc.tickers == ("acme",)
    assert doc.extra == {"desk": "EU"}


def test_z_suffix_and_body_only() -> None:
    doc = decode(encoded(published_at="2026-11-24T08:30:00Z", title=..., body="Only a body"))
    assert isinstance(doc, NewsDocument) and doc.text == "Only a body"


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (b"", "empty_message", "no value"),
        (None, "empty_message", "no value"),
        (b"{not json", "invalid_json", "line 1"),
        (b"\xff\xfe{}", "invalid_utf8", "byte 0"),
        (b"[1, 2]", "schema", "expected a JSON object, got list"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json", "nested too deeply"),
        (encoded(id=...), "schema", "missing required field 'id'"),
        (encoded(id=7), "schema", "'id' must be a string, got int"),
        (encoded(id="  "), "schema", "'id' is empty"),
        (encoded(published_at="2026-11-24T08:30:00"), "schema", "naive times are rejected"),
        (encoded(published_at="yesterday"), "schema", "not an RFC 3339 time"),
        (encoded(published_at=...), "schema", "missing required field 'published_at'"),
        (encoded(title=5), "schema", "'title' must be a string"),
        (encoded(title="", body="  "), "empty_text", "both empty"),
        (encoded(tickers="AAPL"), "schema", "list of strings"),
        (encoded(title="\ud800 broken"), "invalid_utf8", "unpaired surrogate"),
        (encoded(body="x" * 200_000), "too_large", "limit is 100000"),
    ],
)
def test_every_bad_input_has_its_reason(raw: bytes | None, reason: str, detail: str) -> None:
    letter = decode(raw, topic="news", partition=2, offset=41, key=b"k")
    assert isinstance(letter, DeadLetter)
    assert letter.reason == reason
    assert detail in letter.detail
    record = letter.as_dict()
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == ("news", 2, 41)
    assert record["reason"] == reason


def test_oversized_messages_are_rejected_before_parsing_and_dead_lettered_by_reference() -> None:
    letter = decode(b"{" + b" " * 2000 + b"}", Limits(max_message_bytes=1000), topic="news", partition=1, offset=7)
    assert isinstance(letter, DeadLetter) and letter.reason == "too_large"
    record = letter.as_dict()
    assert record["original_base64"] == "" and record["original_omitted"] is True
    assert record["original_bytes"] == 2002 and record["source_offset"] == 7


def test_dead_letter_keeps_the_original_bytes() -> None:
    import base64

    letter = decode(b"\x00\x01garbage")
    assert isinstance(letter, DeadLetter)
    assert base64.b64decode(letter.as_dict()["original_base64"]) == b"\x00\x01garbage"
