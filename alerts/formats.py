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


def _summary(alert: Alert) -> str:
    return (
        f"Negative news {alert.status} on {alert.scope} {alert.key}: "
        f"{alert.observed_negative_share:.0%} negative of {alert.count} "
        f"(baseline {alert.baseline_negative_share:.0%})"
    )


def alertmanager(alert: Alert, receiver: str = "finmon", external_url: str = "") -> dict[str, Any]:
    """The payload Alertmanager posts to webhook receivers (version 4)."""
    labels = _labels(alert)
    headlines = "; ".join(h.title for h in alert.headlines)
    annotations = {
        "summary": _summary(alert),
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
        return alert.model_dump(mode="json")
    if fmt == "alertmanager":
        return alertmanager(alert, receiver)
    if fmt == "slack":
        return slack(alert)
    raise ValueError(f"unknown alert format {fmt!r}; expected one of {', '.join(FORMATS)}")
