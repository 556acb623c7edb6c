"""The demo's terminal view shows current windows only."""

from monitor.demo import View
from streams.core.records import Counts, Trend


def trend(key: str, minute: int, negative: int, total: int, scope: str = "ticker") -> Trend:
    return Trend(
        scope=scope,
        key=key,
        window="20s",
        window_start=f"2026-12-02T09:{minute:02d}:00.000Z",
        window_end=f"2026-12-02T09:{minute:02d}:20.000Z",
        counts=Counts(negative=negative, neutral=total - negative, positive=0),
        total=total,
        negative_share=negative / total if total else 0.0,
        mean_score=0.0,
        unique_counts=Counts(negative=negative, neutral=total - negative, positive=0),
        unique_total=total,
        unique_negative_share=negative / total if total else 0.0,
        final=True,
    )


def test_a_key_that_went_quiet_leaves_the_view_instead_of_standing_as_latest() -> None:
    view = View()
    view.add_trend(trend("NKE", 1, 4, 4))
    view.add_trend(trend("TSLA", 1, 2, 10))
    assert "NKE 100% of 4" in view.render("", "20s")
    for minute in (2, 3):
        view.add_trend(trend("TSLA", minute, 3, 10))
    view.add_trend(trend("NKE", 2, 0, 0))  # the empty window the worker reports after its last story
    text = view.render("", "20s")
    assert "NKE" not in text and "TSLA 30% of 10" in text
