"""Stored news to rescore, cut into shards: JSONL line ranges, CSV files, Kafka offset ranges.

A shard is the unit of parallel work and of resumption: it is planned once (offsets and byte
positions fixed), so a rerun reads exactly the same messages. Readers yield the same ``Message``
the worker decodes, or a ``DeadLetter`` for a row that cannot even become one.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from models.errors import DataError
from models.files import FILE_KINDS, BadRow, csv_rows, jsonl_rows, kind_of
from streams.cluster.topics import client_options
from streams.core.decode import parse_time
from streams.core.records import DeadLetter
from streams.core.scoring import Message
from streams.errors import Rejected
from streams.settings import KafkaSettings

Item = Message | DeadLetter


@dataclass(frozen=True)
class Shard:
    """Messages ``start``..``end`` (exclusive) of one source: byte positions of a JSONL file,
    offsets of a Kafka partition; a CSV file is one shard. ``first`` numbers its first line."""

    name: str
    kind: str
    source: str
    partition: int = -1
    start: int = 0
    end: int = -1
    first: int = 1
    count: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shard:
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Files named or matched by glob patterns, in a stable order; a pattern matching nothing is an error."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        files = [Path(m) for m in matches if Path(m).is_file()]
        if not files:
            raise DataError(f"{pattern}: no such file")
        for path in files:
            if path.suffix.lower() not in FILE_KINDS:
                raise DataError(f"{path}: unsupported format {path.suffix or '(none)'}; use .jsonl or .csv")
            if path.resolve() not in [f.resolve() for f in found]:
                found.append(path)
    return found


def plan_files(paths: list[Path], shard_size: int) -> list[Shard]:
    shards: list[Shard] = []
    for number, path in enumerate(paths):
        kind = FILE_KINDS[path.suffix.lower()]
        stem = f"f{number:04d}"
        if kind == "csv":
            with path.open("rb") as handle:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            shards.append(Shard(f"{stem}-0000", kind, str(path.resolve()), count=max(lines - 1, 0)))
            continue
        shards.extend(_jsonl_shards(path, stem, shard_size))
    return shards


def _jsonl_shards(path: Path, stem: str, shard_size: int) -> list[Shard]:
    source = str(path.resolve())
    cuts: list[tuple[int, int, int, int]] = []  # (byte start, byte end, first line, lines)
    start, first, lines, position = 0, 1, 0, 0
    with path.open("rb") as handle:
        for line in handle:
            position += len(line)
            lines += 1
            if lines == shard_size:
                cuts.append((start, position, first, lines))
                start, first, lines = position, first + lines, 0
    if lines or not cuts:
        cuts.append((start, position, first, lines))
    return [
        Shard(f"{stem}-{number:04d}", "jsonl", source, -1, begin, end, line, count)
        for number, (begin, end, line, count) in enumerate(cuts)
    ]


def parse_bound(value: str | None) -> int | datetime | None:
    """An offset (integer) or an RFC 3339 time with a zone."""
    if value is None:
        return None
    if value.strip().isdigit():
        return int(value)
    try:
        return parse_time(value)
    except Rejected as exc:
        raise DataError(f"{value!r} is neither an offset nor an RFC 3339 time with a zone") from exc


def plan_topic(
    kafka: KafkaSettings, topic: str, begin: int | datetime | None, end: int | datetime | None, shard_size: int
) -> list[Shard]:
    """Fix the offset range of every partition now, so that a rerun reads the same messages."""
    consumer = KafkaConsumer(**client_options(kafka), enable_auto_commit=False, isolation_level="read_committed")
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise DataError(f"topic {topic!r} does not exist on {kafka.bootstrap_servers}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        low = consumer.beginning_offsets(tps)
        high = consumer.end_offsets(tps)
        starts = _resolve(consumer, tps, begin, low, high)
        ends = _resolve(consumer, tps, end, high, high)
    finally:
        consumer.close()
    shards = []
    for tp in tps:
        first, last = max(starts[tp], low[tp]), min(ends[tp], high[tp])
        for offset in range(first, last, shard_size):
            stop = min(offset + shard_size, last)
            name = f"p{tp.partition:04d}-{offset:012d}"
            shards.append(Shard(name, "kafka", topic, tp.partition, offset, stop, offset, stop - offset))
    return shards


def _resolve(
    consumer: KafkaConsumer,
    tps: list[TopicPartition],
    bound: int | datetime | None,
    default: dict[TopicPartition, int],
    high: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if bound is None:
        return dict(default)
    if isinstance(bound, int):
        return dict.fromkeys(tps, bound)
    found = consumer.offsets_for_times({tp: int(bound.timestamp() * 1000) for tp in tps})
    return {tp: found[tp].offset if found.get(tp) is not None else high[tp] for tp in tps}


def read_file(path: Path) -> Iterator[Item]:
    """Every message of one JSONL or CSV file, in order (``models.files`` reads the rows)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return read_shard(Shard(path.stem, kind_of(path), str(path), end=path.stat().st_size))


def read_shard(shard: Shard, kafka: KafkaSettings | None = None, fetch_bytes: int = 16 << 20) -> Iterator[Item]:
    if shard.kind == "jsonl":
        return _read_jsonl(shard)
    if shard.kind == "csv":
        return _read_csv(shard)
    if kafka is None:
        raise DataError("a Kafka shard needs broker settings")
    return _read_kafka(shard, kafka, fetch_bytes)


def _read_jsonl(shard: Shard) -> Iterator[Item]:
    for row in jsonl_rows(Path(shard.source), shard.start, shard.end, shard.first):
        yield Message(row.value, None, shard.source, None, row.line)


def _read_csv(shard: Shard) -> Iterator[Item]:
    for row in csv_rows(Path(shard.source)):
        if isinstance(row, BadRow):
            yield DeadLetter(row.reason, row.detail, row.original, shard.source, None, row.line)
        else:
            yield Message(row.value, None, shard.source, None, row.line)


def _read_kafka(shard: Shard, kafka: KafkaSettings, fetch_bytes: int) -> Iterator[Item]:
    tp = TopicPartition(shard.source, shard.partition)
    consumer = KafkaConsumer(
        **client_options(kafka),
        enable_auto_commit=False,
        isolation_level="read_committed",  # an aborted transaction's records are not history
        fetch_max_bytes=fetch_bytes,
        max_partition_fetch_bytes=fetch_bytes,
    )
    try:
        consumer.assign([tp])
        consumer.seek(tp, shard.start)
        while consumer.position(tp) < shard.end:  # the position passes control records and compacted gaps too
            batches = consumer.poll(timeout_ms=1000, max_records=5000)
            for record in batches.get(tp, []):
                if record.offset >= shard.end:
                    return
                yield Message(record.value, record.key, record.topic, record.partition, record.offset, _seconds(record))
            if not batches and consumer.end_offsets([tp])[tp] <= consumer.position(tp):
                return  # the range was truncated by retention since it was planned
    finally:
        consumer.close()


def _seconds(record: Any) -> float | None:
    return record.timestamp / 1000.0 if record.timestamp is not None else None
