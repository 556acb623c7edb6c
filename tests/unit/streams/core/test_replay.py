from collections import Counter
from datetime import UTC, datetime, timedelta

from streams.core.windows import TrendWindows, WindowSpec, replay, trend_events

MINUTE = WindowSpec("60s", 60, 60)
HOP = WindowSpec("300s", 300, 60)
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def record(i: int, seconds: float, sentiment: str, topic: str = "Macro", tickers: tuple[str, ...] = ()) -> dict:
    moment = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    score = {"negative": -0.8, "neutral": 0.0, "positive": 0.6}[sentiment]
    return {
        "id": f"d{i}",
        "published_at": moment,
        "title": f"story {i}",
        "topic": topic,
        "tickers": list(tickers),
        "sentiment": sentiment,
        "score": score,
    }


def test_replay_counts_every_document_once_in_every_window() -> None:
    sentiments = ["negative", "neutral", "positive"]
    records = [
        record(i, i * 7.3 % 1800, sentiments[i % 3], tickers=("AAPL",) if i % 4 == 0 else ()) for i in range(400)
    ]
    records += records[:50]  # redelivered copies are not counted twice
    made = replay(reversed(records), [MINUTE, HOP], grace=30, max_future=300, close_every=37)
    trends = [t.model_dump(mode="json") for t in made]
    minute = {(t["scope"], t["key"], t["window_start"]): t for t in trends if t["window"] == "60s"}
    expected: Counter[tuple[str, str, str, str]] = Counter()
    for r in records[:400]:
        start = datetime.fromisoformat(r["published_at"]).replace(second=0, microsecond=0)
        key = start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        expected[("topic", "Macro", key, r["sentiment"])] += 1
        if r["tickers"]:
            expected[("ticker", "AAPL", key, r["sentiment"])] += 1
    assert all(t["final"] for t in trends)
    assert sum(t["total"] for k, t in minute.items() if k[0] == "topic") == 400
    for (scope, key, start, sentiment), n in expected.items():
        assert minute[(scope, key, start)]["counts"][sentiment] == n
    hop_totals = [t["total"] for t in trends if t["window"] == "300s" and t["scope"] == "topic"]
    assert sum(hop_totals) == 400 * 5  # each document lies in five 5-minute windows


def test_replay_matches_live_counting_in_order() -> None:
    records = [record(i, i * 3.1, ["negative", "positive"][i % 2]) for i in range(100)]
    live = TrendWindows([MINUTE, HOP], grace=30)
    for r in records:
        for event in trend_events(r):
            live.add(event, event.published)
    expected = live.close(float("inf"))
    assert list(replay(records, [MINUTE, HOP], 30, 300)) == expected
