"""Property tests: whatever arrives, decoding returns a document or a dead letter, never an exception."""

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.decode import REASONS, decode
from streams.core.records import DeadLetter, NewsDocument, dumps, scored_record
from streams.core.tickers import tag

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
TIMES = st.sampled_from(
    [
        "2026-11-24T09:00:00Z",
        "2026-11-24T09:00:00+05:30",
        "2026-11-24T09:00:00",
        "yesterday",
        "",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+00:00",
    ]
)
DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=20) | st.integers(),
        "published_at": TIMES | st.integers(),
        "title": st.text(max_size=200) | JSON_VALUES,
        "body": st.text(max_size=200),
        "source": st.text(max_size=20) | st.integers(),
        "tickers": st.lists(st.text(max_size=8), max_size=5) | st.text(max_size=8),
        "url": st.text(max_size=30),
        "extra": JSON_VALUES,
    },
)


def check(outcome: NewsDocument | DeadLetter) -> None:
    if isinstance(outcome, DeadLetter):
        assert outcome.reason in REASONS
        json.dumps(outcome.as_dict())
        return
    assert outcome.text.strip()
    assert outcome.published_at.tzinfo is not None
    prediction = {
        "topic": "Macro",
        "topic_scores": {"Macro": 1.0},
        "sentiment": "neutral",
        "sentiment_scores": {"negative": 0.0, "neutral": 1.0, "positive": 0.0},
        "score": 0.0,
        "model_version": "p",
    }
    dumps(scored_record(outcome, prediction, tag(outcome.text, outcome.tickers), datetime.now(UTC)))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_a_document_or_a_dead_letter(raw: bytes) -> None:
    check(decode(raw))


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_any_json_object_decodes_and_what_is_scored_serializes(document: dict) -> None:
    check(decode(json.dumps(document).encode()))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_as_title_and_body(text: str) -> None:
    raw = json.dumps({"id": "x", "published_at": "2026-11-24T09:00:00Z", "title": text, "body": text[::-1]})
    check(decode(raw.encode("utf-8", "surrogatepass")))
