"""The Chinese sets written for finmon: the training set shares no story with the evaluation sets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.text import dedup_key

ROOT = Path(__file__).resolve().parents[3]
TRAINING = ROOT / "models" / "training" / "data" / "zh_written.csv"
EVALUATION = ROOT / "benchmarks" / "data"


def _grams(text: str) -> set[str]:
    return {text[i : i + 4] for i in range(len(text) - 3)}


def test_the_training_set_is_labeled_with_finmons_labels_and_has_no_story_of_the_evaluation_sets() -> None:
    with TRAINING.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 200
    assert all(r["sentiment"] in SENTIMENT_LABELS and r["topic"] in TOPIC_LABELS for r in rows)
    assert {r["topic"] for r in rows} == set(TOPIC_LABELS)
    with (EVALUATION / "zh_headlines.csv").open(encoding="utf-8", newline="") as handle:
        held_out = [r["zh"] for r in csv.DictReader(handle)]
    held_out += [json.loads(line)["text"] for line in (EVALUATION / "zh_news.jsonl").read_text("utf-8").splitlines()]
    keys = {dedup_key(r["text"]) for r in rows}
    assert len(keys) == len(rows) and not keys & {dedup_key(t) for t in held_out}
    # nor a near copy (another number, another name, the same headline inside an article): of the
    # shorter text's 4-character runs, at most 40% are in the other
    for text in held_out:
        grams = _grams(text)
        for row in rows:
            other = _grams(row["text"])
            assert len(grams & other) / min(len(grams), len(other)) <= 0.4, (text, row["text"])
