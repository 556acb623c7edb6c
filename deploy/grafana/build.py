"""Write finmon's Grafana dashboards (JSON, schema of Grafana 11) from the panel lists below.

python deploy/grafana/build.py    # rewrites deploy/grafana/dashboards/*.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "finmon-prometheus"}
RATE = "$__rate_interval"

OPERATIONS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Documents consumed / s", "reqps", [("consumed", f"sum(rate(finmon_documents_consumed_total[{RATE}]))")]),
    (
        "Scored / s by sentiment",
        "reqps",
        [("{{sentiment}}", f"sum by (sentiment) (rate(finmon_documents_scored_total[{RATE}]))")],
    ),
    (
        "Dead-lettered / s by reason",
        "reqps",
        [("{{reason}}", f"sum by (reason) (rate(finmon_documents_dead_lettered_total[{RATE}]))")],
    ),
    (
        "Event time to scored",
        "s",
        [
            ("p50", f"histogram_quantile(0.5, sum by (le) (rate(finmon_event_to_scored_seconds_bucket[{RATE}])))"),
            ("p99", f"histogram_quantile(0.99, sum by (le) (rate(finmon_event_to_scored_seconds_bucket[{RATE}])))"),
            (
                "ingest p99",
                f"histogram_quantile(0.99, sum by (le) (rate(finmon_ingest_to_scored_seconds_bucket[{RATE}])))",
            ),
        ],
    ),
    (
        "Inference batch",
        "short",
        [
            (
                "mean size",
                f"sum(rate(finmon_inference_batch_size_sum[{RATE}])) / "
                f"sum(rate(finmon_inference_batch_size_count[{RATE}]))",
            ),
        ],
    ),
    (
        "Batch inference time",
        "s",
        [
            ("p50", f"histogram_quantile(0.5, sum by (le) (rate(finmon_inference_batch_seconds_bucket[{RATE}])))"),
            ("p99", f"histogram_quantile(0.99, sum by (le) (rate(finmon_inference_batch_seconds_bucket[{RATE}])))"),
        ],
    ),
    ("Consumer lag by topic", "short", [("{{topic}}", "sum by (topic) (finmon_consumer_lag)")]),
    (
        "Window events by outcome",
        "reqps",
        [("{{outcome}}", f"sum by (outcome) (rate(finmon_window_events_total[{RATE}]))")],
    ),
    (
        "Model",
        "short",
        [("{{version}} {{provider}} {{precision}}", "max by (version, provider, precision) (finmon_model_info)")],
    ),
    (
        "Rebalances and commit latency",
        "s",
        [
            ("rebalances", "sum(increase(finmon_rebalances_total[1h]))"),
            ("commit p99", f"histogram_quantile(0.99, sum by (le) (rate(finmon_commit_seconds_bucket[{RATE}])))"),
        ],
    ),
    (
        "Alert deliveries by outcome",
        "short",
        [("{{outcome}}", f"sum by (outcome) (increase(finmon_alert_deliveries_total[{RATE}]))")],
    ),
    ("Alerts in DLQ", "short", [("alerts.dlq", "sum(finmon_alerts_dead_lettered_total)")]),
]

MARKET: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "Documents per topic / s",
        "reqps",
        [("{{topic}}", f'sum by (topic) (rate(finmon_documents_scored_total{{topic=~"$topic"}}[{RATE}]))')],
    ),
    (
        "Negative share per topic (5m)",
        "percentunit",
        [("{{topic}}", 'topic:finmon_negative_share:ratio_rate5m{topic=~"$topic"}')],
    ),
    (
        "Sentiment mix",
        "reqps",
        [("{{sentiment}}", f'sum by (sentiment) (rate(finmon_documents_scored_total{{topic=~"$topic"}}[{RATE}]))')],
    ),
    (
        "Latest closed window: negative share",
        "percentunit",
        [("{{key}}", 'finmon_window_negative_share{scope="topic", key=~"$topic"}')],
    ),
    ("Most negative topics now", "percentunit", [("{{key}}", 'topk(5, finmon_window_negative_share{scope="topic"})')]),
    (
        "Alerts fired",
        "short",
        [("{{scope}}", 'sum by (scope) (increase(finmon_alerts_total{status="firing"}[$__range]))')],
    ),
]


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(65 + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (legend, expr) in enumerate(targets)
        ],
    }


def dashboard(
    uid: str, title: str, panels: list[tuple[str, str, list[tuple[str, str]]]], with_topic: bool
) -> dict[str, Any]:
    variables = []
    if with_topic:
        variables.append(
            {
                "name": "topic",
                "type": "query",
                "datasource": DATASOURCE,
                "multi": True,
                "includeAll": True,
                "allValue": ".*",
                "query": {"query": "label_values(finmon_documents_scored_total, topic)", "refId": "topics"},
                "refresh": 2,
                "current": {"text": "All", "value": "$__all"},
            }
        )
    return {
        "uid": uid,
        "title": title,
        "tags": ["finmon"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": variables},
        "annotations": {
            "list": [
                {
                    "name": "finmon alerts",
                    "datasource": DATASOURCE,
                    "enable": True,
                    "iconColor": "red",
                    "expr": 'changes(finmon_alerts_total{status="firing"}[1m]) > 0',
                    "titleFormat": "alert on {{scope}}",
                }
            ]
        }
        if with_topic
        else {"list": []},
        "panels": [panel(i, *p) for i, p in enumerate(panels)],
    }


def main() -> None:
    out = Path(__file__).resolve().parent / "dashboards"
    out.mkdir(exist_ok=True)
    for name, board in (
        ("finmon-operations.json", dashboard("finmon-operations", "finmon: operations", OPERATIONS, False)),
        ("finmon-market.json", dashboard("finmon-market", "finmon: market mood", MARKET, True)),
    ):
        (out / name).write_text(json.dumps(board, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
