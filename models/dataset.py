"""Labeled examples: reading CSV/JSONL, near-duplicate removal, stratified split."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from models.artifact import sha256_of
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
    "faace1c009564bb861342bd2c2449fa829a811a31a264790a21b66f0021e2bd1": {
        "name": "Chinese financial news headlines (GitHub JINGEWU/Financial-Sentiment-Analysis data/CH.csv, text only)",
        "license": "MIT",
    },
    "cac7a618384e8c418cca9341c65f29fb5f619369b6d7f614b01a44ed3c3bfe3a": {
        "name": "finmon's Chinese headlines, written for finmon (docs/chinese-data.md)",
        "license": "Apache-2.0",
    },
    "970d84fbf92cf60c325cf6a39f68068a3c3df3438329a191a4a2853f7c12006f": {
        "name": "finmon's Chinese evaluation set, written for finmon (docs/chinese-data.md)",
        "license": "Apache-2.0",
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


def describe_dataset(path: Path, head: str, rows: int) -> dict[str, object]:
    """Provenance of a data file for the manifest (known public sets are named with their license)."""
    sha = sha256_of(path)
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


def read_texts(path: Path) -> list[Example]:
    """Unlabeled texts (``text``, any capitalisation, or ``title`` and ``body``): examples a teacher labels."""
    examples = []
    for _, record in _rows(path):
        lowered = {k.lower(): v for k, v in record.items() if isinstance(k, str)}
        text = record_text(lowered)
        if text.strip():
            examples.append(Example(text=text, sources={path.name}))
    if not examples:
        raise DataError(f"{path}: no texts (a column named text, or title and body)")
    return examples


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


@dataclass(frozen=True)
class Split:
    """Three disjoint parts: ``train`` fits the weights, ``select`` makes every choice (early stopping,
    the int8 plan), ``report`` is read once per trained model, after all choices, for its published figures."""

    train: list[Example]
    select: list[Example]
    report: list[Example]


def three_way_split(examples: list[Example], select_fraction: float, report_fraction: float, seed: int) -> Split:
    """Stratified and seeded: the held-out part (``select_fraction + report_fraction``) is cut as
    :func:`stratified_split` cuts a held-out part, then divided between select and report the same way,
    so a model trained on a two-way split of the same held-out size and seed never saw either part."""
    held = select_fraction + report_fraction
    if select_fraction <= 0 or report_fraction <= 0 or held >= 1:
        raise DataError("select and report fractions must be positive and leave examples to train on")
    train, holdout = stratified_split(examples, held, seed)
    select, report = stratified_split(holdout, report_fraction / held, seed + 1)
    return Split(train, select, report)


def stratified_split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Split each label combination with the same fraction, reproducibly for a seed."""
    if not 0.0 < fraction < 1.0:
        raise DataError("a held-out fraction must be between 0 and 1")
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[strata(example)].append(example)
    rng = random.Random(seed)
    train: list[Example] = []
    held: list[Example] = []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda e: dedup_key(e.text))
        rng.shuffle(members)
        cut = round(len(members) * fraction)
        cut = min(max(cut, 1), len(members) - 1) if len(members) >= 2 else 0
        held.extend(members[:cut])
        train.extend(members[cut:])
    rng.shuffle(train)
    return train, held
