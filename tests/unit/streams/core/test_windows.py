from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.core.records import Trend, TrendEvent
from streams.core.windows import Outcome, TrendWindows, WindowSpec, story_key

MINUTE = WindowSpec("1m", 60, 60)
HOP = WindowSpec("15m", 900, 60)
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()


class Counting:
    """TrendWindows driven by plain arguments, its trend records read back as their JSON: the
    assertions below are about counting; ``test_records`` checks the records' types."""

    def __init__(self, grace: int) -> None:
        self.windows = TrendWindows([MINUTE, HOP], grace=grace, changelog=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.windows, name)

    def add(
        self, scope: str, key: str, doc_id: str, moment: float, sentiment: str, score: float, now: float,
        title: str = "", tickers: Sequence[str] = (), source: tuple[int, int] | None = None,
    ) -> Outcome:  # fmt: skip
        event = TrendEvent(scope, key, doc_id, moment, sentiment, score, title, tuple(tickers))
        return self.windows.add(event, now, source)

    def result(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return as_json(self.windows.result(*args, **kwargs))

    def close(self, now: float) -> list[dict[str, Any]]:
        return [as_json(t) for t in self.windows.close(now)]

    def updates(self, now: float) -> list[dict[str, Any]]:
        return [as_json(t) for t in self.windows.updates(now)]


def as_json(trend: Trend) -> dict[str, Any]:
    return trend.model_dump(mode="json")


def make(grace: int = 10) -> Counting:
    return Counting(grace)


def test_hopping_window_starts() -> None:
    assert MINUTE.starts_containing(T0 + 59.9) == [int(T0)]
    assert HOP.starts_containing(T0 + 61) == [int(T0) + 60 - 840 + 60 * i for i in range(15)]


def test_counts_by_window_and_boundaries() -> None:
    w = make()
    now = T0 + 61
    assert w.add("topic", "Earnings", "a", T0 + 0.0, "negative", -0.9, now).counted
    assert w.add("topic", "Earnings", "b", T0 + 59.999, "positive", 0.5, now).counted
    assert w.add("topic", "Earnings", "c", T0 + 60.0, "neutral", 0.1, now).counted
    first = w.result("topic", "Earnings", MINUTE, int(T0), final=False)
    assert first["counts"] == {"negative": 1, "neutral": 0, "positive": 1}
    assert first["negative_share"] == 0.5 and first["mean_score"] == pytest.approx(-0.2)
    assert first["window_start"] == "2026-11-24T09:00:00.000Z" and first["window_end"] == "2026-11-24T09:01:00.000Z"
    hop = w.result("topic", "Earnings", HOP, int(T0) + 60 - 840, final=False)
    assert hop["total"] == 3


def test_the_same_document_counts_once() -> None:
    w = make()
    assert w.add("ticker", "AAPL", "a", T0, "negative", -1, T0 + 1).reason == "counted"
    assert w.add("ticker", "AAPL", "a", T0, "negative", -1, T0 + 1).reason == "duplicate"
    assert w.add("topic", "Macro", "a", T0, "negative", -1, T0 + 1).reason == "counted"
    assert w.result("ticker", "AAPL", MINUTE, int(T0), False)["total"] == 1


def test_a_document_whose_id_looks_like_a_story_marker_is_still_counted() -> None:
    w = make()
    assert w.add("topic", "Macro", "a", T0, "negative", -1, T0 + 1, title="Fed holds rates").counted
    posing = f"story:{story_key('Fed holds rates')}"
    assert w.add("topic", "Macro", posing, T0, "positive", 1, T0 + 1, title="Another story").reason == "counted"
    assert w.result("topic", "Macro", MINUTE, int(T0), False)["total"] == 2


def test_grace_and_late_and_future_events() -> None:
    w = make(grace=10)
    assert w.add("topic", "Macro", "a", T0 + 5, "neutral", 0, now=T0 + 69).counted
    late = w.add("topic", "Macro", "b", T0 + 5, "neutral", 0, now=T0 + 70)
    assert (late.counted, late.reason) == (False, "late")
    assert w.add("topic", "Macro", "c", T0 + 1000, "neutral", 0, now=T0).reason == "future"


def test_windows_close_on_the_clock_once_each_with_a_final_record() -> None:
    w = make(grace=10)
    w.add("topic", "Macro", "a", T0 + 5, "negative", -1, now=T0 + 6)
    assert w.close(now=T0 + 69) == []
    finals = w.close(now=T0 + 70)
    # the minute [T0, T0+60) and the 15-minute window that ends at T0+60 close together
    assert [(r["window"], r["window_end"], r["final"], r["total"]) for r in finals] == [
        ("1m", "2026-11-24T09:01:00.000Z", True, 1),
        ("15m", "2026-11-24T09:01:00.000Z", True, 1),
    ]
    assert w.close(now=T0 + 71) == []
    hop_finals = w.close(now=T0 + 900 + 70)
    assert len(hop_finals) == 14 and all(r["window"] == "15m" and r["total"] == 1 for r in hop_finals)


def test_updates_report_changed_windows_once_as_they_become_the_trailing_one() -> None:
    w = make()
    w.add("topic", "Macro", "a", T0 + 5, "positive", 1, now=T0 + 6)
    updates = w.updates(now=T0 + 6)
    # the minute, and of the 15 hopping windows holding the event the one that ends first
    assert [(u["window"], u["window_start"], u["total"], u["final"]) for u in updates] == [
        ("15m", "2026-11-24T08:46:00.000Z", 1, False),
        ("1m", "2026-11-24T09:00:00.000Z", 1, False),
    ]
    assert w.updates(now=T0 + 7) == []
    # a minute on, with no new event, the next hopping window (changed, not yet published) trails
    later = w.updates(now=T0 + 66)
    assert [(u["window"], u["window_start"], u["total"]) for u in later] == [("15m", "2026-11-24T08:47:00.000Z", 1)]
    assert w.updates(now=T0 + 67) == []


def test_updates_still_publish_an_older_window_open_for_late_events() -> None:
    w = make(grace=10)
    w.add("topic", "Macro", "a", T0 + 58, "negative", -1, now=T0 + 58)
    w.updates(now=T0 + 58)
    w.add("topic", "Macro", "b", T0 + 59, "negative", -1, now=T0 + 62)  # late but within grace
    minute = [u for u in w.updates(now=T0 + 62) if u["window"] == "1m"]
    assert [(u["window_start"], u["total"]) for u in minute] == [("2026-11-24T09:00:00.000Z", 2)]


def test_expired_state_is_deleted_after_every_window_closed_and_the_changelog_says_so() -> None:
    w = make(grace=10)
    w.add("topic", "Macro", "a", T0 + 5, "positive", 1, now=T0 + 6, source=(3, 0))
    written = w.checkpoint()
    assert [key[:1] for key, _ in written] == [b"b", b"m"] and all(value for _, value in written)
    w.close(T0 + 2000)
    w.expire(now=T0 + 900)
    assert w.size() > 0 and w.checkpoint() == []
    w.expire(now=T0 + 900 + 10 + 61)
    assert w.size() == 0, "buckets, markers and the key itself are gone"
    assert sorted(w.checkpoint()) == sorted((key, None) for key, _ in written)


def test_window_sizes_must_be_multiples() -> None:
    with pytest.raises(ValueError, match="multiple"):
        TrendWindows([WindowSpec("1m", 60, 60), WindowSpec("odd", 100, 90)], grace=0)


def test_reposts_count_in_raw_but_once_in_unique_counts() -> None:
    w = make()
    for i in range(50):
        w.add(
            "topic",
            "Earnings",
            f"r{i}",
            T0 + 1,
            "negative",
            -0.9,
            T0 + 2,
            title=f"Acme issues PROFIT warning! https://t.co/{i}",
            tickers=["ACME"],
        )
    w.add("topic", "Earnings", "other", T0 + 1, "negative", -0.5, T0 + 2, title="Globex misses", tickers=["GBX"])
    record = w.result("topic", "Earnings", MINUTE, int(T0), final=True)
    assert record["counts"]["negative"] == 51
    assert record["unique_counts"]["negative"] == 2 and record["unique_total"] == 2
    assert [h["id"] for h in record["headlines"]] == ["r0", "other"]
    assert record["top_tickers"] == ["ACME", "GBX"]


def test_most_negative_headlines_are_kept_per_window() -> None:
    w = make()
    for i in range(8):
        w.add("ticker", "ACME", f"d{i}", T0 + i, "negative", -i / 10, T0 + 9, title=f"story {i}", tickers=["ACME"])
    record = w.result("ticker", "ACME", MINUTE, int(T0), final=False)
    assert [h["id"] for h in record["headlines"]] == ["d7", "d6", "d5", "d4", "d3"]
    assert record["top_tickers"] == []


def test_story_key_matches_training_dedup_entities_links_and_case() -> None:
    from streams.core.windows import story_key

    assert story_key("S&amp;P 500 falls https://t.co/a") == story_key("s&p 500 FALLS!")
    assert story_key("S&P 500 falls") != story_key("S&P 500 rises")
    assert story_key("   ") == ""


def restored(written: list[tuple[bytes, bytes | None]], keep: bytes) -> Counting:
    """A fresh state read back from the changelog records of one kind only (a crash lost the rest)."""
    again = make()
    again.windows.restore([(key, value) for key, value in written if key[:1] == keep])
    return again


def test_a_crash_that_keeps_only_one_of_the_two_writes_neither_loses_nor_doubles_a_count() -> None:
    """A checkpoint writes the bucket and the id's marker as two records; a kill can persist one and lose
    the other. The re-delivered event (same offset and index) must then be counted exactly once."""
    now = T0 + 1
    first = make()
    assert first.add("topic", "Macro", "a", T0, "negative", -1, now, source=(41, 0)).counted
    written = first.checkpoint()

    lost_bucket = restored(written, keep=b"m")  # the marker survived, the count did not
    assert lost_bucket.add("topic", "Macro", "a", T0, "negative", -1, now, source=(41, 0)).counted
    assert lost_bucket.result("topic", "Macro", MINUTE, int(T0), False)["total"] == 1

    lost_marker = restored(written, keep=b"b")  # the count survived, the marker did not
    assert lost_marker.add("topic", "Macro", "a", T0, "negative", -1, now, source=(41, 0)).reason == "duplicate"
    assert lost_marker.add("topic", "Macro", "a", T0, "negative", -1, now, source=(57, 3)).reason == "duplicate"
    assert lost_marker.result("topic", "Macro", MINUTE, int(T0), False)["total"] == 1


def test_two_documents_of_one_packed_message_both_count_and_a_replay_of_it_counts_none() -> None:
    w = make()
    assert w.add("topic", "Macro", "a", T0, "negative", -1, T0 + 1, source=(7, 0)).counted
    assert w.add("topic", "Macro", "b", T0, "positive", 1, T0 + 1, title="other", source=(7, 1)).counted
    assert w.add("topic", "Macro", "a", T0, "negative", -1, T0 + 1, source=(7, 2)).reason == "duplicate"
    again = restored(w.checkpoint(), keep=b"b")
    again.windows.restore([])  # nothing else survived
    assert again.add("topic", "Macro", "b", T0, "positive", 1, T0 + 1, title="other", source=(7, 1)).reason == (
        "duplicate"
    )
    assert again.result("topic", "Macro", MINUTE, int(T0), False)["total"] == 2


def test_the_same_id_in_another_event_is_still_a_duplicate() -> None:
    w = make()
    assert w.add("topic", "Macro", "a", T0, "negative", -1, T0 + 1, title="Rates up", source=(5, 0)).counted
    assert (
        w.add("topic", "Macro", "a", T0, "negative", -1, T0 + 1, title="Rates up", source=(9, 0)).reason == "duplicate"
    )
    assert w.add("topic", "Macro", "b", T0, "negative", -1, T0 + 1, title="Rates up!", source=(12, 0)).counted
    result = w.result("topic", "Macro", MINUTE, int(T0), False)
    assert (result["total"], result["unique_total"]) == (2, 1)  # b is a repost of a's story


def test_state_stays_bounded_through_a_long_stream_in_compressed_time() -> None:
    """A day of stories, 2 a second over 30 keys: what is held never grows past the retention's worth."""
    w = TrendWindows([MINUTE, HOP], grace=30, silent_windows=3, changelog=True)
    sizes = []
    for i in range(86_400 // 60 * 120):
        moment = T0 + i / 2
        key = f"K{i % 30}"
        w.add(TrendEvent("ticker", key, f"d{i}", moment, "negative", -0.5, f"story {i}"), moment, (i, 0))
        if i % 240 == 0:
            w.close(moment)
            w.expire(moment)
            w.checkpoint()
            sizes.append(w.size())
    assert max(sizes[len(sizes) // 2 :]) <= max(sizes[: len(sizes) // 2]) * 1.05
    w.close(T0 + 10**6)
    w.expire(T0 + 10**6)
    assert w.size() == 0


def test_a_key_that_goes_quiet_gets_its_empty_windows_after_its_last_story() -> None:
    windows = TrendWindows([MINUTE, HOP], grace=5, silent_windows=3)
    event = TrendEvent("ticker", "NKE", "n1", T0 + 10, "negative", -0.9)
    windows.add(event, T0 + 10)
    minute = [t for t in windows.close(T0 + 10 * 60) if t.window == "1m"]
    assert [(t.window_start[11:16], t.total) for t in minute] == [
        ("09:00", 1),
        ("09:01", 0),
        ("09:02", 0),
        ("09:03", 0),
    ]
    assert [t for t in windows.close(T0 + 20 * 60) if t.window == "1m"] == []  # three, then nothing more
    quiet = TrendWindows([MINUTE], grace=5)  # what rescoring recomputes: windows with stories only
    quiet.add(event, T0 + 10)
    assert [t.total for t in quiet.close(T0 + 10 * 60)] == [1]
