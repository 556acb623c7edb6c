"""Batch commands over stored news: rescore (history with a new model) and compare (two models)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.cli import existing_dir, output_file, positive_int
from monitor.errors import UsageError
from monitor.settings import Settings

log = logging.getLogger("finmon")
STATE_ROOT = Path(".finmon-rescore")


def _shards(args: argparse.Namespace, settings: Settings, shard_size: int) -> list[Any]:
    from streams.batch.sources import expand_inputs, parse_bound, plan_files, plan_topic
    from streams.cluster.preflight import check_cluster

    if args.topic:
        if not settings.kafka.bootstrap_servers:
            raise UsageError("--topic needs a broker: set FINMON_KAFKA__BOOTSTRAP_SERVERS")
        check_cluster(settings.kafka)
        begin, end = parse_bound(args.begin), parse_bound(args.end)
        return plan_topic(settings.kafka, args.topic, begin, end, shard_size)
    if args.begin or args.end:
        raise UsageError("--from and --to select a range of a --topic, not of files")
    return plan_files(expand_inputs(args.input), shard_size)


def _request(args: argparse.Namespace, settings: Settings, version: str) -> dict[str, Any]:
    inputs = []
    for pattern in args.input or []:
        path = Path(pattern)
        stat = path.stat() if path.is_file() else None
        inputs.append([str(path.resolve()) if stat else pattern, stat.st_size if stat else None])
    return {
        "inputs": inputs,
        "topic": args.topic,
        "from": args.begin,
        "to": args.end,
        "broker": settings.kafka.bootstrap_servers if args.topic else None,
        "model": version,
        "shard_size": args.shard_size,
    }


def _plan(args: argparse.Namespace, settings: Settings, version: str) -> tuple[Path, list[Any], datetime]:
    """Load this request's plan from its state folder, or make and save it."""
    from streams.batch.rescore import request_digest
    from streams.batch.sources import Shard

    request = _request(args, settings, version)
    state = args.state or STATE_ROOT / request_digest(request)
    plan_file = state / "plan.json"
    if plan_file.is_file():
        plan = json.loads(plan_file.read_text())
        if plan["request"] != json.loads(json.dumps(request)):
            raise UsageError(f"{state} holds the state of another rescore; give another --state")
        log.info("resuming the rescore in %s", state)
        return state, [Shard.from_dict(s) for s in plan["shards"]], datetime.fromisoformat(plan["scored_at"])
    shards = _shards(args, settings, args.shard_size)
    scored_at = datetime.now(UTC).replace(microsecond=0)
    state.mkdir(parents=True, exist_ok=True)
    document = {"request": request, "scored_at": scored_at.isoformat(), "shards": [s.as_dict() for s in shards]}
    plan_file.write_text(json.dumps(document, indent=1))
    return state, shards, scored_at


def rescore(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from models.artifact import load_artifact
    from streams.batch.rescore import Job, Outputs, done_marker, finish, run_shards
    from streams.batch.sinks import check_output
    from streams.core.companies import linker_for
    from streams.core.decode import Limits
    from streams.core.windows import window_specs

    if bool(args.topic) == bool(args.input):
        raise UsageError("give either --topic or --input")
    if not (args.output or args.output_topic):
        raise UsageError("give --output FILE and/or --output-topic NAME")
    topics_out = args.output_topic or args.trends_topic or args.dlq_topic
    if topics_out and not settings.kafka.bootstrap_servers:
        raise UsageError("topic outputs need a broker: set FINMON_KAFKA__BOOTSTRAP_SERVERS")
    for path in (args.output, args.trends_output, args.rejects):
        if path:
            check_output(path)
    folder = args.model or settings.model.path
    version = load_artifact(folder, verify_checksums=settings.model.verify_checksums).version
    state, shards, scored_at = _plan(args, settings, version)
    threads = settings.model.threads or max(1, (os.cpu_count() or 1) // args.workers)
    job = Job(
        tuple(shards),
        folder,
        state,
        scored_at,
        Limits(settings.stream.max_message_bytes, settings.stream.max_text_chars),
        settings.kafka if settings.kafka.bootstrap_servers else None,
        args.batch_size,
        settings.model.model_copy(
            update={"path": folder, "threads": threads, "device": args.device or settings.model.device}
        ),
        settings.stream.watchlist,
        settings.stream.company_universe,
    )
    linker_for(settings.stream.watchlist, settings.stream.company_universe)  # a bad watchlist stops here
    total = sum(s.count for s in shards)
    already = sum(s.count for s in shards if done_marker(state, s).is_file())
    with tqdm(total=total, initial=already, unit="doc", desc="rescoring", disable=args.no_progress) as bar:
        run_shards(job, args.workers, bar.update)
    outputs = Outputs(
        args.output, args.output_topic, args.trends_output, args.trends_topic, args.rejects, args.dlq_topic
    )
    w = settings.windows
    summary = finish(job, outputs, window_specs(w), w.grace_seconds, w.max_future_seconds)
    rejected = summary["rejected"]
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items())) or "none"
    print(f"rescored {summary['scored']} documents with model {version}; rejected {sum(rejected.values())} ({reasons})")
    print(f"{summary['trends']} trend windows recomputed; state in {state}")
    return 0


def _compare_inputs(
    args: argparse.Namespace, settings: Settings
) -> tuple[list[str], list[str], dict[str, list[str | None]]]:
    from models.labels import parse_label
    from monitor.scoring import document_text, read_documents
    from streams.batch.sources import expand_inputs, read_shard
    from streams.core.decode import Limits, decode
    from streams.core.records import NewsDocument

    ids: list[str] = []
    texts: list[str] = []
    gold: dict[str, list[str | None]] = {head: [] for head in args.labels or []}
    rows: list[dict[str, Any]] = []
    if args.topic:
        limits = Limits(settings.stream.max_message_bytes, settings.stream.max_text_chars)
        for shard in _shards(args, settings, 1 << 62):
            for item in read_shard(shard, settings.kafka):
                outcome = decode(getattr(item, "value", None), limits)
                if isinstance(outcome, NewsDocument):
                    rows.append({"id": outcome.id, "text": outcome.text})
    else:
        for path in expand_inputs(args.data):
            rows.extend(read_documents(path))
    for number, row in enumerate(rows, start=1):
        text = document_text(row)
        if row.get("_error") or not isinstance(text, str) or not text.strip():
            continue
        ids.append(str(row.get("id") or number))
        texts.append(text)
        for head in gold:
            raw = row.get(head, row.get("label") if len(gold) == 1 else None)
            try:
                gold[head].append(parse_label(head, raw) if raw not in (None, "") else None)
            except ValueError:
                gold[head].append(None)
    if not texts:
        raise UsageError("no usable documents in the data given")
    return ids, texts, gold


def compare(args: argparse.Namespace, settings: Settings) -> int:
    from models.compare import compare as compare_models
    from models.runtime import Classifier
    from monitor.report import comparison_html, format_comparison

    if bool(args.topic) == bool(args.data):
        raise UsageError("give either --data or --topic")
    ids, texts, gold = _compare_inputs(args, settings)
    results = []
    for folder in (args.old, args.new):
        classifier = Classifier.from_settings(settings.model, path=folder, device=args.device)
        results.append(classifier.predict(texts))
    report = compare_models(ids, texts, results[0], results[1], gold or None, top=args.top)
    print(format_comparison(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.html:
        args.html.write_text(comparison_html(report), encoding="utf-8")
    return 0


def _range_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", help="read this Kafka topic (news or news.scored records)")
    parser.add_argument("--from", dest="begin", help="first offset, or an RFC 3339 time (default: the start)")
    parser.add_argument("--to", dest="end", help="offset or RFC 3339 time to stop before (default: the end now)")


def register_rescore(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rescore", help="rescore stored news with a model and recompute the trends")
    _range_flags(p)
    p.add_argument("--input", action="append", help="JSONL or CSV file or glob (repeatable)")
    p.add_argument("--model", type=existing_dir, help="model folder (default: the setting model.path)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the setting model.device")
    p.add_argument("--output", type=output_file, help="scored records, .jsonl or .parquet")
    p.add_argument("--output-topic", help="produce scored records here, e.g. news.rescored")
    p.add_argument("--trends-output", type=Path, help="recomputed trend windows, .jsonl or .parquet")
    p.add_argument("--trends-topic", help="produce recomputed trends here, e.g. sentiment.trends.rescored")
    p.add_argument("--rejects", type=Path, help="bad records with the reason, .jsonl")
    p.add_argument("--dlq-topic", help="produce bad records here as dead letters")
    p.add_argument("--workers", type=positive_int, default=1, help="processes, each on its own shards")
    p.add_argument("--batch-size", type=positive_int, default=1024, help="documents read and scored at a time")
    p.add_argument("--shard-size", type=positive_int, default=20_000, help="documents per resumable shard")
    p.add_argument("--state", type=Path, help=f"resume state folder (default: {STATE_ROOT}/<request digest>)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=rescore)


def register_compare(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compare", help="compare two model versions over the same documents")
    p.add_argument("--old", type=existing_dir, required=True, help="current model folder")
    p.add_argument("--new", type=existing_dir, required=True, help="candidate model folder")
    p.add_argument("--data", action="append", help="JSONL or CSV file or glob (repeatable)")
    _range_flags(p)
    p.add_argument("--labels", type=_heads, help="gold labels in the data: sentiment, topic or sentiment,topic")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--top", type=positive_int, default=20, help="sentiment flips to list")
    p.add_argument("--json", type=Path, help="also write the report as JSON")
    p.add_argument("--html", type=Path, help="also write the report as an HTML page")
    p.set_defaults(handler=compare)


def _heads(value: str) -> list[str]:
    heads = [h.strip() for h in value.split(",") if h.strip()]
    if not heads or any(h not in ("sentiment", "topic") for h in heads):
        raise argparse.ArgumentTypeError(f"{value!r}: expected sentiment, topic or sentiment,topic")
    return heads


REGISTER = [register_rescore, register_compare]
