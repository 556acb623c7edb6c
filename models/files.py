"""Rows of CSV and JSONL files: the one reader of finmon's inputs (training, ``finmon score``,
rescoring, ``finmon compare`` and ``finmon feed --replay`` read files through it).

Every row comes back with its line number, as the JSON document the worker would have received
(``Row``; a CSV row becomes an object of its non-empty cells, a ``tickers`` cell a list), or as
what is wrong with it (``BadRow``). What a bad row means is the caller's choice: training stops
with the file and line, scoring and rescoring dead-letter it, the feed sends it on for the worker
to dead-letter.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import DataError

FILE_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_TICKER_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Row:
    line: int
    value: bytes


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str
    detail: str
    original: bytes


def kind_of(path: Path) -> str:
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported format {path.suffix or '(none)'}; use .csv or .jsonl")
    return kind


def rows(path: Path) -> Iterator[Row | BadRow]:
    """Every row of a CSV or JSONL file, in order."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder, give a file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return jsonl_rows(path) if kind_of(path) == "jsonl" else csv_rows(path)


def jsonl_rows(path: Path, start: int = 0, end: int | None = None, first: int = 1) -> Iterator[Row]:
    """The non-blank lines between byte positions ``start`` and ``end``, ``first`` numbering the first
    (their JSON is for the reader to decode: a bad line is still a row of the file)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        position, number = start, first
        while end is None or position < end:
            line = handle.readline()
            if not line:
                break
            position += len(line)
            value = line.rstrip(b"\r\n")
            if value.strip():
                yield Row(number, value)
            number += 1


def csv_rows(path: Path) -> Iterator[Row | BadRow]:
    """Each CSV row as a JSON object of its non-empty cells; a row with the wrong number of cells is bad."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            number = reader.line_num
            if None in row or any(value is None for value in row.values()):
                raw = io.StringIO()
                csv.writer(raw).writerow([v for v in row.values() if isinstance(v, str)])
                detail = f"line {number}: {len(reader.fieldnames or [])} columns expected"
                yield BadRow(number, "schema", detail, raw.getvalue().encode("utf-8", "surrogateescape"))
                continue
            yield Row(number, _csv_document(row))


def _csv_document(row: dict[str, str]) -> bytes:
    document: dict[str, Any] = {name: value for name, value in row.items() if value != ""}
    if "tickers" in document:
        document["tickers"] = [t for t in _TICKER_SPLIT.split(document["tickers"]) if t]
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogateescape")


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]] | BadRow]:
    """Rows decoded to JSON objects, with the line number; a row that is not one (invalid JSON, not
    UTF-8, not an object) is a ``BadRow``."""
    for row in rows(path):
        if isinstance(row, BadRow):
            yield row
            continue
        try:
            record = json.loads(row.value)
        except UnicodeDecodeError as exc:
            yield BadRow(row.line, "invalid_utf8", f"not UTF-8 ({exc.reason} at byte {exc.start})", row.value)
            continue
        except ValueError as exc:
            yield BadRow(row.line, "invalid_json", f"invalid JSON: {getattr(exc, 'msg', exc)}", row.value)
            continue
        if not isinstance(record, dict):
            yield BadRow(row.line, "schema", "expected a JSON object", row.value)
        elif _has_surrogates(record):
            yield BadRow(row.line, "invalid_utf8", "not UTF-8", row.value)
        else:
            yield row.line, record


def _has_surrogates(record: dict[str, Any]) -> bool:
    for value in record.values():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False
