"""Every alert says why it fired, in each webhook format."""

import json

import pytest

from alerts.formats import explain, render
from alerts.records import Alert, AlertWindow, Headline


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


def test_quoted_news_text_cannot_format_mention_or_forge_lines() -> None:
    """A headline is somebody else's text: in Slack it cannot link, mention (<!channel>) or add a
    line; in Alertmanager's annotation each headline stays one quoted string."""
    hostile = alert("negative_share").model_copy(
        update={
            "key": "TSLA\nTickers: FAKE",
            "headlines": [
                Headline(id="h1", title="<!channel> crash & <https://evil.example|click>", score=-0.9),
                Headline(id="h2", title='quit"; "forged\u202eevil\nTickers: ALL', score=-0.8),
            ],
            "tickers": ["TSLA", "<@U123>"],
        }
    )
    text = render(hostile, "slack")["text"]
    assert "<!channel>" not in text and "<https://" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt; crash &amp; &lt;https://evil.example|click&gt;" in text
    assert "\u202e" not in text
    assert [line for line in text.splitlines() if line.startswith("Tickers:")] == ["Tickers: TSLA, &lt;@U123&gt;"]
    annotations = render(hostile, "alertmanager")["alerts"][0]["annotations"]
    assert json.loads("[" + annotations["headlines"].replace('"; "', '", "') + "]") == [
        "<!channel> crash & <https://evil.example|click>",
        'quit"; "forged evil Tickers: ALL',
    ]
    assert "\n" not in annotations["summary"] and "\n" not in annotations["headlines"]
