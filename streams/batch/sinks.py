"""Where batch results go: JSONL or Parquet files written whole and renamed, or Kafka topics."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from models.errors import DataError
from streams.cluster.topics import client_options
from streams.settings import KafkaSettings

PARQUET_EXTRA = "Parquet output needs pyarrow: pip install 'finmon[parquet]'"
FILE_FORMATS = (".jsonl", ".ndjson", ".parquet")


def check_output(path: Path) -> None:
    """Refuse an unknown format, or Parquet without pyarrow, before any work is done."""
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise DataError(f"{path}: unsupported output format {suffix or '(none)'}; use .jsonl or .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise DataError(PARQUET_EXTRA) from exc
    if not path.parent.is_dir():
        raise DataError(f"{path.parent}: no such folder")


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write every record to ``path`` atomically (a temporary file renamed at the end)."""
    part = path.with_name(path.name + ".part")
    if path.suffix.lower() == ".parquet":
        count = _write_parquet(part, records)
    else:
        count = 0
        with part.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
    os.replace(part, path)
    return count


def _write_parquet(path: Path, records: Iterable[dict[str, Any]], chunk: int = 50_000) -> int:
    """Nested fields (score maps, tickers, counts, headlines) are stored as JSON text columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: Any = None
    count = 0
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal writer
        table = pa.Table.from_pylist([_flat(row) for row in rows])
        if writer is None:
            writer = pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table.cast(writer.schema))
        rows.clear()

    for record in records:
        rows.append(record)
        count += 1
        if len(rows) >= chunk:
            flush()
    if rows:
        flush()
    if writer is None:
        pq.write_table(pa.table({}), str(path))
    else:
        writer.close()
    return count


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    return {
        name: json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        for name, value in record.items()
    }


def produce(kafka: KafkaSettings, topic: str, messages: list[tuple[bytes | None, bytes, float | None]]) -> None:
    """Send (key, value, timestamp seconds) messages and wait until the broker has them all."""

    async def send() -> None:
        producer = AIOKafkaProducer(**client_options(kafka), acks="all", max_request_size=16 << 20)  # type: ignore[arg-type]
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value, key=key, timestamp_ms=int(ts * 1000) if ts else None)
                for key, value, ts in messages
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())
