"""Analysts and their feedback: who may review on the dashboard, and the reviews as training data."""

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


def _tokens_file(args: argparse.Namespace, settings: Settings) -> Path:
    path = args.file or settings.web.tokens_file
    if path is None:
        raise UsageError("no tokens file: pass --file PATH or set FINMON_WEB__TOKENS_FILE")
    return Path(path)


def add_analyst(args: argparse.Namespace, settings: Settings) -> int:
    """Make an analyst's token, keep its hash in the tokens file, show the token once."""
    from monitor.web.access import new_token, write_analyst

    path = _tokens_file(args, settings)
    token = new_token()
    write_analyst(path, args.name, token)
    print(f"analyst {args.name} added to {path}; their token (shown once, keep it in a password manager):")
    print(token)
    host, port = settings.web.host, settings.web.port
    scheme = "https" if settings.web.tls or settings.web.behind_tls_proxy else "http"
    print(f"sign in once at {scheme}://{host}:{port}/dashboard?token=<token> (the page keeps a cookie)")
    return 0


def remove_analyst(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.web.access import read_tokens_file, save_tokens

    path = _tokens_file(args, settings)
    hashes = read_tokens_file(path)
    if hashes.pop(args.name, None) is None:
        raise UsageError(f"no analyst {args.name!r} in {path}")
    save_tokens(path, hashes)
    print(f"analyst {args.name} removed from {path}: running dashboards refuse their token from now on")
    return 0


def list_analysts(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.web.access import read_tokens_file

    for name in sorted(read_tokens_file(_tokens_file(args, settings))):
        print(name)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("analysts", help="who may review on the dashboard: tokens kept as hashes in a file")
    who = a.add_subparsers(dest="action", required=True)
    for name, handler, text in (
        ("add", add_analyst, "make an analyst's token (or a new one) and print it once"),
        ("remove", remove_analyst, "revoke an analyst's token"),
        ("list", list_analysts, "the analysts in the file"),
    ):
        command = who.add_parser(name, help=text)
        if name != "list":
            command.add_argument("name", help="the analyst's name, as reviews will show it")
        command.add_argument("--file", type=Path, help="the tokens file (default: FINMON_WEB__TOKENS_FILE)")
        command.set_defaults(handler=handler)

    p = sub.add_parser("feedback", help="analyst feedback from the dashboard")
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser("export", help="write the reviews on the feedback topic in the training format")
    e.add_argument("--output", type=output_file, required=True, help=".jsonl or .csv, for finmon train --feedback-data")
    e.set_defaults(handler=export)


REGISTER = [register]
