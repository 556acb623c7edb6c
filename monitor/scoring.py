"""``finmon score``: a CSV or JSONL file scored offline with the pipeline's own decode, classify and
tag code (the rescoring scorer's simple mode), one JSON line out per row, in input order."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from models.dataset import record_text
from models.errors import DataError
from models.routing import Router
from models.runtime import Classifier
from streams.batch.sources import Item, read_file
from streams.core.companies import Linker
from streams.core.decode import Limits
from streams.core.records import DeadLetter
from streams.core.scoring import Message, score_batch

CHUNK = 512


def check_columns(path: Path) -> None:
    """A CSV must have a text: a ``text`` column, or ``title`` and ``body``."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            columns = set(next(csv.reader(handle), []))
        if not {"text", "title", "body"} & columns:
            raise DataError(f"{path}: CSV needs a 'text' column (or 'title' and 'body')")


def read_documents(path: Path) -> Iterator[dict[str, Any]]:
    """Documents of a CSV or JSONL file (``text``, or ``title`` + ``body``), read as rescoring and the
    feed read them; a row that is not a JSON object comes back as ``{"_error": (reason, detail)}``."""
    check_columns(path)
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


def completed(item: Item, stem: str, now: datetime) -> Item:
    """A row as a news document: an id (``STEM-LINE``) and ``published_at`` (now) where missing, and
    ``text`` as the title when it has neither title nor body. A row that is not a JSON object is
    left as it is, so decoding names what is wrong with it."""
    if isinstance(item, DeadLetter):
        return item
    try:
        doc = json.loads(item.value or b"")
    except ValueError:
        return item
    if not isinstance(doc, dict):
        return item
    if not doc.get("id"):
        doc["id"] = f"{stem}-{item.offset}"
    if "title" not in doc and "body" not in doc:
        doc["title"] = doc.pop("text", "")
    if not doc.get("published_at"):
        doc["published_at"] = now.isoformat()
    value = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogateescape")
    return Message(value, item.key, item.topic, item.partition, item.offset, item.timestamp)


def score_file(
    classifier: Router | Classifier,
    source: Path,
    target: Path,
    progress: bool = True,
    limits: Limits | None = None,
    linker: Linker | None = None,
) -> dict[str, int]:
    """The rescoring scorer's simple mode: ``source`` into ``target``, one line per row in input order,
    the ``news.scored`` record or ``{"id", "line", "error": {"reason", "detail"}}``; never stops on a row."""
    check_columns(source)
    limits = limits or Limits()
    now = datetime.now(UTC)
    counts = {"scored": 0, "rejected": 0}
    with target.open("w", encoding="utf-8") as out, tqdm(desc="scoring", unit="doc", disable=not progress) as bar:
        chunk: list[Item] = []
        for item in read_file(source):
            chunk.append(completed(item, source.stem, now))
            if len(chunk) >= CHUNK:
                _score_chunk(classifier, chunk, out, counts, limits, linker)
                bar.update(len(chunk))
                chunk = []
        if chunk:
            _score_chunk(classifier, chunk, out, counts, limits, linker)
            bar.update(len(chunk))
    return counts


def _score_chunk(
    classifier: Router | Classifier,
    chunk: list[Item],
    out: TextIO,
    counts: dict[str, int],
    limits: Limits,
    linker: Linker | None,
) -> None:
    messages = [item for item in chunk if isinstance(item, Message)]
    result = score_batch(messages, classifier, limits, linker=linker)
    dead = {letter.offset: letter for letter in [*result.dead, *(i for i in chunk if isinstance(i, DeadLetter))]}
    scored = iter(record for _, record in result.scored)
    for item in chunk:
        letter = dead.get(item.offset)
        if letter is None:
            line = next(scored)
            counts["scored"] += 1
        else:
            error = {"reason": letter.reason, "detail": letter.detail}
            line = {"id": _id_of(letter.original), "line": item.offset, "error": error}
            counts["rejected"] += 1
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _id_of(original: bytes) -> object:
    try:
        doc = json.loads(original)
    except ValueError:
        return None
    return doc.get("id") if isinstance(doc, dict) else None
