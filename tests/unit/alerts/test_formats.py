"""Every alert says why it fired, in each webhook format."""

import pytest

from alerts.formats import explain, render
from alerts.records import Alert, AlertWindow


def alert(reason: str) -> Alert:
    return Alert(
        alert_id="a1",
        status="firing",
        scope="ticker",
        key="TSLA",
        reason=reason,
        window=AlertWindow(start="2026-12-02T09:00:00.000Z", end="2026-12-02T09:01:00.000Z"),
        observed_negative_share=0.29,
        baseline_negative_share=0.18,
        count=100,
        negative_count=29,
        baseline_negative_count=5.5,
        lift=1.61,
        p_value=0.0002,
    )


def test_a_share_alert_and_a_volume_alert_explain_themselves_differently() -> None:
    assert explain(alert("negative_share")) == (
        "negative_share: 29% negative vs 18% usual (29 of 100 stories, 1.6x, p=2.0e-04)"
    )
    assert explain(alert("negative_volume")) == (
        "negative_volume: 29 negative stories vs 5.5 usual a window (29% of 100, p=2.0e-04)"
    )


@pytest.mark.parametrize("reason", ["negative_share", "negative_volume"])
def test_each_format_carries_the_reason(reason: str) -> None:
    why = explain(alert(reason))
    assert why in render(alert(reason), "slack")["text"]
    manager = render(alert(reason), "alertmanager")
    assert manager["commonAnnotations"]["reason"] == reason and why in manager["commonAnnotations"]["summary"]
    own = render(alert(reason), "json")
    assert own["reason"] == reason and why in own["summary"]


def test_a_resolved_alert_says_it_is_back_to_usual_and_what_it_fired_on() -> None:
    resolved = alert("negative_volume").model_copy(update={"status": "resolved", "observed_negative_share": 0.1})
    assert (
        explain(resolved) == "back to usual: 10% negative vs 18% usual (29 of 100 stories); it fired on negative_volume"
    )
