"""Offline scoring of a CSV or JSONL file, one JSON line out per document in, in input order."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from models.dataset import record_text
from models.errors import DataError, InvalidTextError
from models.routing import Router
from models.runtime import Classifier, check_texts
from streams.batch.sources import read_file
from streams.core.records import DeadLetter

CHUNK = 512


def read_documents(path: Path) -> Iterator[dict[str, Any]]:
    """Documents of a CSV or JSONL file (``text``, or ``title`` + ``body``), read as rescoring and the
    feed read them; a row that is not a JSON object comes back as ``{"_error": (reason, detail)}``."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            columns = set(next(csv.reader(handle), []))
        if not {"text", "title", "body"} & columns:
            raise DataError(f"{path}: CSV needs a 'text' column (or 'title' and 'body')")
    for item in read_file(path):
        if isinstance(item, DeadLetter):
            yield {"_error": (item.reason, item.detail)}
            continue
        try:
            record = json.loads(item.value or b"")
        except ValueError as exc:
            yield {"_error": ("invalid_json", f"line {item.offset}: {getattr(exc, 'msg', exc)}")}
            continue
        yield record if isinstance(record, dict) else {"_error": ("schema", f"line {item.offset}: not a JSON object")}


def document_text(document: dict[str, Any]) -> object:
    if "text" in document:
        return document["text"]
    return record_text(document) if ("title" in document or "body" in document) else None


def score_file(classifier: Router | Classifier, source: Path, target: Path, progress: bool = True) -> dict[str, int]:
    """Score ``source`` into ``target``; bad documents get an ``error`` line, never stop the run."""
    counts = {"scored": 0, "rejected": 0}
    with target.open("w", encoding="utf-8") as out, tqdm(desc="scoring", unit="doc", disable=not progress) as bar:
        chunk: list[dict[str, Any]] = []
        for document in read_documents(source):
            chunk.append(document)
            if len(chunk) >= CHUNK:
                _score_chunk(classifier, chunk, out, counts)
                bar.update(len(chunk))
                chunk = []
        if chunk:
            _score_chunk(classifier, chunk, out, counts)
            bar.update(len(chunk))
    return counts


def _score_chunk(
    classifier: Router | Classifier, chunk: list[dict[str, Any]], out: TextIO, counts: dict[str, int]
) -> None:
    lines: list[dict[str, Any] | None] = [None] * len(chunk)
    good: list[int] = []
    for i, document in enumerate(chunk):
        error = document.get("_error")
        text = document_text(document)
        if error is None:
            try:
                check_texts([text])
                good.append(i)
                continue
            except InvalidTextError as exc:
                error = (exc.reason, exc.detail)
        lines[i] = {"id": document.get("id"), "error": {"reason": error[0], "detail": error[1]}}
    langs = [lang if isinstance(lang := chunk[i].get("lang"), str) else None for i in good]
    predictions = classifier.predict([document_text(chunk[i]) for i in good], None, langs)
    for i, prediction in zip(good, predictions, strict=True):
        lines[i] = {"id": chunk[i].get("id"), **prediction.as_dict()}
    for line in lines:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    counts["rejected"] += len(chunk) - len(good)
    counts["scored"] += len(good)
