"""Alert payloads: finmon's own JSON, the Alertmanager v4 webhook shape, Slack incoming-webhook text."""

from __future__ import annotations

import hashlib
from typing import Any

from alerts.records import Alert

FORMATS = ("json", "alertmanager", "slack")
ZERO_TIME = "0001-01-01T00:00:00Z"


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


def _summary(alert: Alert) -> str:
    return f"Negative news {alert.status} on {alert.scope} {alert.key}: {explain(alert)}"


def alertmanager(alert: Alert, receiver: str = "finmon", external_url: str = "") -> dict[str, Any]:
    """The payload Alertmanager posts to webhook receivers (version 4)."""
    labels = _labels(alert)
    headlines = "; ".join(h.title for h in alert.headlines)
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
    return {
        "version": "4",
        "groupKey": "{}:" + "{" + f'scope="{labels["scope"]}", key="{labels["key"]}"' + "}",
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
    lines = [f"{icon} *{_summary(alert)}*"]
    lines += [f"• {h.title} ({h.score:+.2f})" for h in alert.headlines]
    if alert.tickers:
        lines.append("Tickers: " + ", ".join(alert.tickers))
    return {"text": "\n".join(lines)}


def render(alert: Alert, fmt: str, receiver: str = "finmon") -> dict[str, Any]:
    if fmt == "json":
        return {**alert.model_dump(mode="json"), "summary": _summary(alert)}
    if fmt == "alertmanager":
        return alertmanager(alert, receiver)
    if fmt == "slack":
        return slack(alert)
    raise ValueError(f"unknown alert format {fmt!r}; expected one of {', '.join(FORMATS)}")
