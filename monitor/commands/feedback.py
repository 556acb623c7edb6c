"""Analyst feedback: export the corrections kept on the feedback topic as training data."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from monitor.cli import output_file
from monitor.errors import UsageError
from monitor.settings import Settings


def export(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.web.feedback import FeedbackError, FeedbackRecord, training_rows
    from streams.batch.sources import plan_topic, read_shard
    from streams.cluster.preflight import check_cluster
    from streams.core.scoring import Message

    if not settings.kafka.bootstrap_servers:
        raise UsageError("no broker: set FINMON_KAFKA__BOOTSTRAP_SERVERS")
    check_cluster(settings.kafka)
    if args.output.suffix.lower() not in (".jsonl", ".csv"):
        raise UsageError(f"{args.output}: use .jsonl or .csv")
    if not args.output.parent.is_dir():
        raise UsageError(f"{args.output.parent}: no such folder")
    topic = settings.topics.feedback
    records: list[FeedbackRecord] = []
    skipped = 0
    for shard in plan_topic(settings.kafka, topic, None, None, 1 << 62):
        for item in read_shard(shard, settings.kafka):
            try:
                if not isinstance(item, Message):
                    raise FeedbackError(item.detail)
                records.append(FeedbackRecord.decode(item.value or b""))
            except (ValueError, FeedbackError):
                skipped += 1
    rows = training_rows(records)
    _write(args.output, rows)
    corrected = sum(1 for r in rows if r["verdict"] == "corrected")
    print(
        f"exported {len(rows)} reviewed documents ({corrected} corrected, {len(rows) - corrected} confirmed) "
        f"from {topic} to {args.output}" + (f"; {skipped} unreadable records skipped" if skipped else "")
    )
    return 0


def _write(path: Path, rows: list[dict[str, Any]]) -> None:

    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8", newline="") as out:
        if path.suffix.lower() == ".csv":
            writer = csv.DictWriter(
                out, fieldnames=["text", "sentiment", "topic", "id", "verdict", "analyst", "model_version", "at"]
            )
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    part.replace(path)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("feedback", help="analyst feedback from the dashboard")
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser("export", help="write the reviews on the feedback topic in the training format")
    e.add_argument("--output", type=output_file, required=True, help=".jsonl or .csv, for finmon train --feedback-data")
    e.set_defaults(handler=export)


REGISTER = [register]
