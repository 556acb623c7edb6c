"""Labeled examples: reading CSV/JSONL, near-duplicate removal, stratified split."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import DataError
from models.files import BadRow, records
from models.labels import parse_label
from models.text import dedup_key

KNOWN_DATASETS: dict[str, dict[str, str]] = {
    "71aa99d0d37feced03c999ec23b5b25302c92f39d69b6acb0a37aa076c5420e8": {
        "name": "zeroshot/twitter-financial-news-sentiment",
        "license": "MIT",
    },
    "63b9ea8183728dd5ddc6a57289341556509ddc0a8d037616519319a316b54490": {
        "name": "zeroshot/twitter-financial-news-topic",
        "license": "MIT",
    },
}


@dataclass
class Example:
    """One text with the labels known for it (either head may be missing)."""

    text: str
    sentiment: str | None = None
    topic: str | None = None
    weight: float = 1.0
    sources: set[str] = field(default_factory=set)
    guessed: set[str] = field(default_factory=set)  # heads whose label a teacher model gave, not a person


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_dataset(path: Path, head: str, rows: int) -> dict[str, object]:
    """Provenance of a data file for the manifest (known public sets are named with their license)."""
    sha = file_sha256(path)
    known = KNOWN_DATASETS.get(sha, {"name": path.name, "license": "unspecified"})
    return {"head": head, "file": path.name, "sha256": sha, "rows": rows, **known}


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """Labeled rows, read with finmon's one reader; a bad row stops training with its file and line."""
    for item in records(path):
        if isinstance(item, BadRow):
            raise DataError(f"{path}:{item.line}: {item.detail}")
        yield item


def record_text(record: dict[str, object]) -> str:
    """``text``, or ``title`` and ``body`` joined, as the scorer reads documents."""
    text = record.get("text")
    if isinstance(text, str) and text.strip():
        return text
    parts = [record.get(key) for key in ("title", "body")]
    return " ".join(part for part in parts if isinstance(part, str) and part.strip())


def read_examples(path: Path, head: str, weight: float = 1.0) -> list[Example]:
    """Read one labeled file; the label is in ``label`` or in a column named after the head."""
    examples = []
    for number, record in _rows(path):
        text = record_text(record)
        raw = record.get(head, record.get("label"))
        if raw is None or raw == "":
            continue
        if not text.strip():
            raise DataError(f"{path}:{number}: empty text")
        try:
            label = parse_label(head, raw)
        except ValueError as exc:
            raise DataError(f"{path}:{number}: {exc}") from exc
        example = Example(text=text, weight=weight, sources={path.name})  # normalized where it is read
        setattr(example, head, label)
        examples.append(example)
    if not examples:
        raise DataError(f"{path}: no labeled {head} examples")
    return examples


def deduplicate(examples: Iterable[Example]) -> list[Example]:
    """Merge near-duplicates: one example per key, carrying every head's label.

    A heavier example (an analyst correction) overrides a lighter one's label for the same
    text; among equal weights the first label seen wins.
    """
    merged: dict[str, Example] = {}
    for example in examples:
        key = dedup_key(example.text)
        if not key:
            continue
        kept = merged.get(key)
        if kept is None:
            merged[key] = Example(example.text, example.sentiment, example.topic, example.weight, set(example.sources))
            continue
        for head in ("sentiment", "topic"):
            new = getattr(example, head)
            if new is not None and (getattr(kept, head) is None or example.weight > kept.weight):
                setattr(kept, head, new)
        kept.weight = max(kept.weight, example.weight)
        kept.sources |= example.sources
    return list(merged.values())


def strata(example: Example) -> str:
    return f"{example.sentiment or '-'}|{example.topic or '-'}"


def stratified_split(
    examples: list[Example], validation_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split each label combination with the same fraction, reproducibly for a seed."""
    if not 0.0 < validation_fraction < 1.0:
        raise DataError("validation fraction must be between 0 and 1")
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[strata(example)].append(example)
    rng = random.Random(seed)
    train: list[Example] = []
    validation: list[Example] = []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda e: dedup_key(e.text))
        rng.shuffle(members)
        cut = round(len(members) * validation_fraction)
        cut = min(max(cut, 1), len(members) - 1) if len(members) >= 2 else 0
        validation.extend(members[:cut])
        train.extend(members[cut:])
    rng.shuffle(train)
    return train, validation
