"""Alert payloads: finmon's own JSON, the Alertmanager v4 webhook shape, Slack incoming-webhook text."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from alerts.records import Alert

FORMATS = ("json", "alertmanager", "slack")
ZERO_TIME = "0001-01-01T00:00:00Z"
# control characters (a newline would forge a line of its own) and bidirectional overrides (which
# reorder what a reader sees) never leave finmon inside quoted news text
_UNSEEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]+")


def plain(text: str) -> str:
    """Quoted text (a headline, a key) on one line, without characters that hide or reorder it."""
    return _UNSEEN.sub(" ", text).strip()


def slack_text(text: str) -> str:
    """Quoted text as Slack's mrkdwn must receive it: &, < and > escaped, so a headline cannot hold a
    link, a mention (<!channel>) or a user reference."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoted_list(texts: list[str]) -> str:
    """Headlines as one annotation: each a JSON string, so that none can pass for two or close the list."""
    return "; ".join(json.dumps(plain(t), ensure_ascii=False) for t in texts)


def _labels(alert: Alert) -> dict[str, str]:
    return {
        "alertname": "FinmonNegativeSpike",
        "scope": alert.scope,
        "key": alert.key,
        "severity": alert.severity,
        "source": "finmon",
    }


REASONS = {
    "negative_share": "negative share above the key's usual",
    "negative_volume": "negative story count above the key's usual",
}


def explain(alert: Alert) -> str:
    """Why the alert fired, in one line: the test that fired, what was seen against what is usual; for a
    resolved alert, the calm window that ended it and what it had fired on."""
    p_value = f"p={alert.p_value:.1e}"
    if alert.status == "resolved":
        return (
            f"back to usual: {alert.observed_negative_share:.0%} negative vs {alert.baseline_negative_share:.0%} usual "
            f"({alert.negative_count} of {alert.count} stories); it fired on {alert.reason or 'negative_share'}"
        )
    if alert.reason == "negative_volume":
        usual = alert.baseline_negative_count
        usual_text = f"{usual:.1f}" if usual is not None else "?"
        return (
            f"negative_volume: {alert.negative_count} negative stories vs {usual_text} usual a window "
            f"({alert.observed_negative_share:.0%} of {alert.count}, {p_value})"
        )
    return (
        f"negative_share: {alert.observed_negative_share:.0%} negative vs {alert.baseline_negative_share:.0%} usual "
        f"({alert.negative_count} of {alert.count} stories, {alert.lift:.1f}x, {p_value})"
    )


def _summary(alert: Alert, quote: Any = plain) -> str:
    return f"Negative news {alert.status} on {alert.scope} {quote(alert.key)}: {explain(alert)}"


def alertmanager(alert: Alert, receiver: str = "finmon", external_url: str = "") -> dict[str, Any]:
    """The payload Alertmanager posts to webhook receivers (version 4)."""
    labels = _labels(alert)
    headlines = quoted_list([h.title for h in alert.headlines])
    annotations = {
        "summary": _summary(alert),
        "reason": alert.reason or "",
        "headlines": headlines,
        "p_value": f"{alert.p_value}",
        "alert_id": alert.alert_id,
    }
    resolved = alert.status == "resolved"
    started = alert.started_at or alert.window.start
    group_labels = {"scope": labels["scope"], "key": labels["key"]}
    group_key = ", ".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in group_labels.items())
    return {
        "version": "4",
        "groupKey": "{}:{" + group_key + "}",
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": alert.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": started,
                "endsAt": alert.window.end if resolved else ZERO_TIME,
                "generatorURL": external_url,
                "fingerprint": hashlib.sha256(str(sorted(labels.items())).encode()).hexdigest()[:16],
            }
        ],
    }


def slack(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook text: the summary and the driving headlines."""
    icon = ":rotating_light:" if alert.status == "firing" else ":white_check_mark:"
    lines = [f"{icon} *{_summary(alert, slack_text)}*"]
    lines += [f"• {slack_text(h.title)} ({h.score:+.2f})" for h in alert.headlines]
    if alert.tickers:
        lines.append("Tickers: " + ", ".join(slack_text(t) for t in alert.tickers))
    return {"text": "\n".join(lines)}


def render(alert: Alert, fmt: str, receiver: str = "finmon") -> dict[str, Any]:
    if fmt == "json":
        return {**alert.model_dump(mode="json"), "summary": _summary(alert)}
    if fmt == "alertmanager":
        return alertmanager(alert, receiver)
    if fmt == "slack":
        return slack(alert)
    raise ValueError(f"unknown alert format {fmt!r}; expected one of {', '.join(FORMATS)}")
