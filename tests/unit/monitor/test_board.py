import dataclasses
import json
from datetime import UTC, datetime

import pytest

from alerts.records import Alert
from monitor.web.board import Board
from monitor.web.feedback import FeedbackError, FeedbackRecord, feedback_record, training_rows
from streams.core.records import Counts, Trend


class Clock:
    """A hand-moved clock (the board's only notion of time)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def scored(i: int, topic: str = "Macro", sentiment: str = "negative", tickers: tuple[str, ...] = ()) -> bytes:
    record = {"id": f"d{i}", "title": f"t{i}", "topic": topic, "sentiment": sentiment, "score": -0.5}
    return json.dumps({**record, "tickers": list(tickers), "model_version": "v1"}).encode()


def trend(key: str, start: str, negative: int, total: int, scope: str = "topic", window: str = "60s") -> Trend:
    counts = Counts(negative=negative, neutral=total - negative)
    return Trend(
        scope=scope, key=key, window=window, window_start=start, window_end=start, counts=counts, total=total,
        negative_share=negative / total, mean_score=-0.1, unique_counts=counts, unique_total=total,
        unique_negative_share=negative / total,
    )  # fmt: skip


def alert(alert_id: str, status: str, scope: str, key: str) -> Alert:
    window = {"start": "2026-11-24T09:00:00Z", "end": "2026-11-24T09:01:00Z"}
    fields = {"observed_negative_share": 0.8, "baseline_negative_share": 0.2, "count": 20, "window": window}
    return Alert.model_validate({"alert_id": alert_id, "status": status, "scope": scope, "key": key, **fields})


def test_every_document_counts_but_the_feed_keeps_a_bounded_sample() -> None:
    clock = Clock()
    board = Board("60s", feed_per_second=5, clock=clock)
    for i in range(50):
        board.add_scored(scored(i))
    board.add_scored(b"not json")
    clock.now += 1
    for i in range(50, 53):
        board.add_scored(scored(i, sentiment="positive"))
    clock.now += 1
    assert board.scored_total == 54
    assert [item["id"] for item in board.feed] == ["d0", "d1", "d2", "d3", "d4", "d50", "d51", "d52"]
    assert board.throughput(seconds=10) == pytest.approx(5.4)


def test_series_keep_the_latest_value_of_each_window_and_a_bounded_history() -> None:
    board = Board("60s", history=3)
    for minute in range(5):
        board.add_trend(trend("Macro", f"2026-11-24T09:0{minute}:00Z", 1, 4))
    board.add_trend(trend("Macro", "2026-11-24T09:04:00Z", 3, 4))  # an update of the open window
    board.add_trend(trend("Macro", "2026-11-24T09:04:00Z", 3, 4, window="900s"))  # other windows are ignored
    points = board.snapshot()["topics"][0]["points"]
    assert [p["start"][11:16] for p in points] == ["09:02", "09:03", "09:04"]
    assert points[-1]["negative_share"] == 0.75


def test_filters_narrow_topics_feed_alerts_and_show_a_ticker() -> None:
    board = Board("60s", feed_per_second=100)
    board.add_scored(scored(1, "Macro", "negative", ("AAPL",)))
    board.add_scored(scored(2, "Energy / Oil", "positive", ("XOM",)))
    board.add_scored(scored(3, "Energy / Oil", "negative"))
    for key in ("Macro", "Energy / Oil"):
        board.add_trend(trend(key, "2026-11-24T09:00:00Z", 1, 2))
    board.add_trend(trend("XOM", "2026-11-24T09:00:00Z", 0, 2, scope="ticker"))
    board.add_alert(alert("a", "firing", "topic", "Macro"))
    board.add_alert(alert("b", "firing", "ticker", "XOM"))
    board.add_alert(alert("a", "resolved", "topic", "Macro"))
    everything = board.snapshot()
    assert [a["alert_id"] for a in everything["alerts"]["firing"]] == ["b"]
    assert [a["alert_id"] for a in everything["alerts"]["recent"]] == ["a", "b"]
    oil = board.snapshot(topic="Energy / Oil", sentiment="negative")
    assert [t["key"] for t in oil["topics"]] == ["Energy / Oil"] and [d["id"] for d in oil["feed"]] == ["d3"]
    assert oil["alerts"]["recent"] == []
    xom = board.snapshot(ticker="XOM")
    assert [d["id"] for d in xom["feed"]] == ["d2"] and xom["ticker"]["points"][0]["total"] == 2
    assert [a["key"] for a in xom["alerts"]["recent"]] == ["XOM"] and everything["tickers"] == ["XOM"]


def test_agreement_counts_the_latest_review_of_each_document() -> None:
    board = Board("60s")
    base = {"model_topic": "Macro", "model_sentiment": "negative", "topic": "Macro"}
    board.add_feedback({**base, "id": "d1", "sentiment": "neutral"})
    board.add_feedback({**base, "id": "d2", "sentiment": "negative"})
    board.add_feedback({**base, "id": "d1", "sentiment": "negative"})  # the analyst changed their mind
    board.add_feedback({**base, "id": "d2", "sentiment": "negative"})  # the same review read again
    agreement = board.snapshot()["agreement"]
    assert agreement["sentiment"] == {"negative": {"reviewed": 2, "agreed": 2, "rate": 1.0}}
    assert agreement["topic"]["Macro"]["reviewed"] == 2


def test_feedback_records_are_validated_and_export_the_latest_review() -> None:
    payload = {
        "id": "d1",
        "text": "Oil slumps",
        "model_topic": "Energy / Oil",
        "model_sentiment": "neutral",
        "topic": "Energy / Oil",
        "sentiment": "negative",
        "analyst": "mallory",  # the page's word for who it is counts for nothing
        "model_version": "v1",
    }
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    record = feedback_record(payload, when, analyst="dana")
    assert record.verdict == "corrected" and record.at == "2026-11-24T09:30:00Z" and record.analyst == "dana"
    assert FeedbackRecord.decode(record.encode()) == record  # one encoding, read back the same
    assert feedback_record({**payload, "sentiment": "neutral"}).verdict == "confirmed"
    ticker_alert = {
        **payload,
        "model_topic": None,
        "topic": None,
        "sentiment": "negative",
        "model_sentiment": "negative",
    }
    assert feedback_record(ticker_alert).verdict == "confirmed"  # a headline under a ticker alert has no topic
    for broken, message in [
        ([], "JSON object"),
        ({**payload, "id": ""}, "id is required"),
        ({**payload, "sentiment": "bearish!"}, "sentiment must be one of"),
        ({**payload, "text": 5}, "text must be a string"),
        ({**payload, "text": "x" * 10_001}, "longer than"),
    ]:
        with pytest.raises(FeedbackError, match=message):
            feedback_record(broken)
    later = dataclasses.replace(record, sentiment="positive")
    with pytest.raises(FeedbackError):
        FeedbackRecord.decode(b'{"junk": true}')
    rows = training_rows([record, later])
    assert rows == [
        {
            "text": "Oil slumps",
            "sentiment": "positive",
            "topic": "Energy / Oil",
            "id": "d1",
            "verdict": "corrected",
            "analyst": "dana",
            "model_version": "v1",
            "at": "2026-11-24T09:30:00Z",
        }
    ]
