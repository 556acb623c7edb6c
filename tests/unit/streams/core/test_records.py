"""One round trip per record that crosses a topic: what is written is what is read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.records import Alert, AlertDeadLetter, AlertWindow, DeliveryFailure, Headline, Record
from streams.core.decode import decode
from streams.core.records import Counts, NewsDocument, Trend, TrendEvent, pack_events, scored_record, unpack_events
from streams.core.windows import Bucket

EVENT = TrendEvent(
    scope="ticker", key="TSLA", id="n1", published=1795510800.0, sentiment="negative", score=-0.9,
    title="Tesla recalls", tickers=("TSLA", "F"),
)  # fmt: skip
TREND = Trend(
    scope="topic", key="Macro", window="60s", window_start="2026-11-24T09:00:00.000Z",
    window_end="2026-11-24T09:01:00.000Z", counts=Counts(negative=3, neutral=1), total=4, negative_share=0.75,
    mean_score=-0.4, unique_counts=Counts(negative=2, neutral=1), unique_total=3, unique_negative_share=0.667,
    headlines=(Headline(id="n1", title="Fed warns", score=-0.9),), top_tickers=("TSLA",), final=True,
    model_version="m1",
)  # fmt: skip
ALERT = Alert(
    alert_id="a1", status="firing", scope="ticker", key="TSLA",
    window=AlertWindow(start="2026-11-24T09:00:00Z", end="2026-11-24T09:01:00Z"), observed_negative_share=0.8,
    baseline_negative_share=0.2, count=20, negative_count=16, reason="negative_share", headlines=TREND.headlines,
)  # fmt: skip
RECORDS: list[Record] = [
    TREND,
    ALERT,
    AlertDeadLetter(alert=ALERT, failures=(DeliveryFailure(target="https://hooks.example", outcome="failed"),)),
]


def test_packed_trend_events_and_window_buckets_read_back_as_written() -> None:
    other = TrendEvent("topic", "Macro", "n2", 1795510860.5, "neutral", 0.0, "Fed holds \u2028 rates", ())
    assert unpack_events(pack_events([EVENT, other])) == [EVENT, other]
    bucket = Bucket([1, 0, 2], [1, 0, 1], -0.3, [(-0.9, "n1", "Fed warns")], {"TSLA": 1}, applied=41)
    assert Bucket.decode(bucket.encode()) == bucket
    with pytest.raises(ValueError):
        unpack_events(pack_events([TrendEvent("topic", "Macro", "n3", 0.0, "furious", 0.0)]))


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_record_reads_back_as_it_was_written(record: Record) -> None:
    assert type(record).decode(record.encode()) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_newer_writers_extra_field_is_ignored_and_a_missing_one_is_refused(record: Record) -> None:
    data: dict[str, Any] = {**record.model_dump(mode="json"), "added_later": 1}
    assert type(record).model_validate(data) == record
    required = [name for name, f in type(record).model_fields.items() if f.is_required()]
    if required:
        with pytest.raises(ValidationError):
            type(record).model_validate({k: v for k, v in data.items() if k != required[0]})


def test_a_scored_record_keeps_the_input_fields_finmon_does_not_know() -> None:
    doc = decode(b'{"id": "n1", "title": "Fed holds", "published_at": "2026-11-24T09:00:00Z", "desk": "rates"}')
    assert isinstance(doc, NewsDocument)
    prediction = {"topic": "Macro", "topic_scores": {}, "sentiment": "neutral", "sentiment_scores": {}}
    record = scored_record(doc, {**prediction, "score": 0.0, "model_version": "m1"}, [], datetime.now(UTC))
    assert record["desk"] == "rates" and record["id"] == "n1" and record["model_version"] == "m1"
