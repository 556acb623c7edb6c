"""Batch rescoring of stored news with the worker's own decode, classify and window code.

A run is planned once into shards (``streams.batch.sources``) and kept in a state folder: each
finished shard leaves its scored records, its rejects and a ``.done`` marker, so an interrupted
run resumes without redoing finished shards, and every record carries the run's fixed
``scored_at``, so a rerun writes the same bytes. Outputs are assembled from the shard files at
the end: files are rewritten whole, topics are produced shard by shard with a marker each.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from models.artifact import load_artifact
from models.errors import DataError
from models.routing import Router
from models.settings import ModelSettings
from streams.batch.sinks import produce, write_records
from streams.batch.sources import Item, Shard, read_shard
from streams.core.companies import linker_for
from streams.core.decode import Limits
from streams.core.records import DeadLetter, Trend, dumps
from streams.core.scoring import Message, score_batch
from streams.core.windows import SEP, WindowSpec, replay
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Job:
    """What to rescore and how; ``state`` is the folder of this run's plan and shard files."""

    shards: tuple[Shard, ...]
    model: Path
    state: Path
    scored_at: datetime
    limits: Limits
    kafka: KafkaSettings | None = None
    batch_size: int = 1024  # documents read and written per step; the model's own batch is in ``model_settings``
    model_settings: ModelSettings = field(default_factory=ModelSettings)
    watchlist: Path | None = None
    company_universe: bool = True


@dataclass
class ShardResult:
    scored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"scored": self.scored, "rejected": self.rejected}


def request_digest(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]


def done_marker(state: Path, shard: Shard) -> Path:
    return state / f"{shard.name}.done"


def scored_file(state: Path, shard: Shard) -> Path:
    return state / f"{shard.name}.scored.jsonl"


def rejects_file(state: Path, shard: Shard) -> Path:
    return state / f"{shard.name}.rejects.jsonl"


def pending_shards(job: Job) -> list[Shard]:
    return [shard for shard in job.shards if not done_marker(job.state, shard).is_file()]


def batches(items: Iterator[Item], size: int, depth: int = 4) -> Iterator[list[Item]]:
    """Batches of ``items`` read ahead on a thread, so reading overlaps classification."""
    out: queue.Queue[list[Item] | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fill() -> None:
        try:
            batch: list[Item] = []
            for item in items:
                batch.append(item)
                if len(batch) >= size:
                    out.put(batch)
                    batch = []
                if stop.is_set():
                    return
            if batch:
                out.put(batch)
            out.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            out.put(exc)

    reader = threading.Thread(target=fill, name="finmon-rescore-read", daemon=True)
    reader.start()
    try:
        while (got := out.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()


def score_shard(job: Job, shard: Shard, classifier: Router, progress: Progress) -> ShardResult:
    """Score one shard into its files; the ``.done`` marker is written last."""
    result = ShardResult()
    scored_part = scored_file(job.state, shard).with_suffix(".part")
    rejects_part = rejects_file(job.state, shard).with_suffix(".part")
    with scored_part.open("wb") as scored_out, rejects_part.open("wb") as rejects_out:
        for items in batches(read_shard(shard, job.kafka), job.batch_size):
            messages = [item for item in items if isinstance(item, Message)]
            letters = [item for item in items if isinstance(item, DeadLetter)]
            linker = linker_for(job.watchlist, job.company_universe)
            batch = score_batch(messages, classifier, job.limits, clock=lambda: job.scored_at, linker=linker)
            for _, record in batch.scored:
                scored_out.write(dumps(record) + b"\n")
            for letter in letters + batch.dead:
                fixed = dataclasses.replace(letter, received_at=job.scored_at)
                rejects_out.write(dumps(fixed.as_dict()) + b"\n")
                result.rejected[letter.reason] = result.rejected.get(letter.reason, 0) + 1
            result.scored += len(batch.scored)
            progress(len(items))
    os.replace(scored_part, scored_file(job.state, shard))
    os.replace(rejects_part, rejects_file(job.state, shard))
    done_marker(job.state, shard).write_text(json.dumps(result.as_dict()))
    return result


def run_shards(job: Job, workers: int, progress: Progress) -> None:
    """Score every unfinished shard, in this process or in ``workers`` processes."""
    todo = pending_shards(job)
    if not todo:
        return
    if workers <= 1 or len(todo) == 1:
        classifier = Router.from_settings(job.model_settings, path=job.model)
        for shard in todo:
            score_shard(job, shard, classifier, progress)
        return
    context = mp.get_context("spawn")
    counter = context.Value("q", 0)
    seen = 0
    with context.Pool(workers, initializer=_start_worker, initargs=(job, counter)) as pool:
        results = pool.imap_unordered(_score_in_worker, todo)
        finished = 0
        while finished < len(todo):
            try:
                results.next(timeout=0.5)
                finished += 1
            except mp.TimeoutError:
                pass
            now = int(counter.value)
            progress(now - seen)
            seen = now
    progress(int(counter.value) - seen)


_WORKER: dict[str, Any] = {}


def _start_worker(job: Job, counter: Any) -> None:
    _WORKER["job"] = job
    _WORKER["counter"] = counter
    _WORKER["classifier"] = Router.from_settings(job.model_settings, path=job.model)


def _score_in_worker(shard: Shard) -> dict[str, Any]:
    counter = _WORKER["counter"]

    def progress(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    return score_shard(_WORKER["job"], shard, _WORKER["classifier"], progress).as_dict()


def shard_results(job: Job) -> dict[str, Any]:
    """Totals over finished shards: scored, and rejected by reason."""
    scored, rejected = 0, dict[str, int]()
    for shard in job.shards:
        marker = done_marker(job.state, shard)
        if marker.is_file():
            data = json.loads(marker.read_text())
            scored += int(data["scored"])
            for reason, n in data["rejected"].items():
                rejected[reason] = rejected.get(reason, 0) + int(n)
    return {"scored": scored, "rejected": rejected}


def scored_records(job: Job) -> Iterator[dict[str, Any]]:
    """Every scored record of the run, shard by shard in plan order."""
    for shard in job.shards:
        with scored_file(job.state, shard).open("rb") as handle:
            for line in handle:
                yield json.loads(line)


def lines_of(job: Job, shard: Shard, kind: str) -> list[bytes]:
    path = scored_file(job.state, shard) if kind == "scored" else rejects_file(job.state, shard)
    return path.read_bytes().splitlines()


@dataclass(frozen=True)
class Outputs:
    """Where a run's results go; any may be None, at least one of records/topic is set."""

    records: Path | None = None
    topic: str | None = None
    trends: Path | None = None
    trends_topic: str | None = None
    rejects: Path | None = None
    dlq_topic: str | None = None


def finish(job: Job, outputs: Outputs, windows: list[WindowSpec], grace: int, max_future: int) -> dict[str, Any]:
    """Assemble the outputs from the finished shards; topics get each shard once (a marker each)."""
    if outputs.records:
        write_records(outputs.records, scored_records(job))
    if outputs.rejects:
        write_records(outputs.rejects, (json.loads(line) for s in job.shards for line in lines_of(job, s, "rejects")))
    for topic, kind in ((outputs.topic, "scored"), (outputs.dlq_topic, "rejects")):
        if topic:
            _produce_shards(job, topic, kind)
    trends: list[Trend] = []
    if outputs.trends or outputs.trends_topic:
        version = load_artifact(job.model, verify_checksums=False).version
        trends = list(replay(scored_records(job), windows, grace, max_future, model_version=version))
    if outputs.trends:
        write_records(outputs.trends, (t.model_dump(mode="json") for t in trends))
    if outputs.trends_topic:
        marker = job.state / f"trends.sent-{request_digest({'topic': outputs.trends_topic})}"
        if not marker.is_file() and job.kafka is not None:
            produce(
                job.kafka, outputs.trends_topic, [(f"{t.scope}{SEP}{t.key}".encode(), t.encode(), None) for t in trends]
            )
            marker.touch()
    return {**shard_results(job), "trends": len(trends)}


def _produce_shards(job: Job, topic: str, kind: str) -> None:
    if job.kafka is None:
        raise DataError(f"producing to {topic} needs broker settings")
    suffix = request_digest({"topic": topic, "kind": kind})
    for shard in job.shards:
        marker = job.state / f"{shard.name}.sent-{suffix}"
        if marker.is_file():
            continue
        messages = [_message(line, kind) for line in lines_of(job, shard, kind)]
        produce(job.kafka, topic, messages)
        marker.touch()


def _message(line: bytes, kind: str) -> tuple[bytes | None, bytes, float | None]:
    record = json.loads(line)
    if kind == "scored":
        return str(record["id"]).encode(), line, datetime.fromisoformat(record["published_at"]).timestamp()
    key = record.get("key_base64")
    return (base64.b64decode(key) if key else None), line, None
