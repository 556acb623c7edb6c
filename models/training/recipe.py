"""The parts of the training recipe beyond plain fine-tuning: a teacher's labels for the head a data
set lacks, class-balanced loss weights, length-bucketed batches and layer-wise learning-rate decay."""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.dataset import Example
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS

log = logging.getLogger(__name__)
HEADS = {"sentiment": SENTIMENT_LABELS, "topic": TOPIC_LABELS}
BUCKET_BATCHES = 50
_LAYER = re.compile(r"\.layer\.(\d+)\.")


def add_teacher_labels(examples: Sequence[Example], teacher: Path, threshold: float) -> dict[str, int]:
    """Label each example's missing head with a trained finmon model where it is at least ``threshold``
    sure; the label is marked as guessed (it weighs less). Returns how many labels were added per head."""
    from models.runtime import Classifier

    classifier = Classifier.load(teacher, device="cpu")
    missing = [e for e in examples if e.sentiment is None or e.topic is None]
    added = dict.fromkeys(HEADS, 0)
    for example, prediction in zip(missing, classifier.predict([e.text for e in missing]), strict=True):
        for head in HEADS:
            scores: dict[str, float] = getattr(prediction, f"{head}_scores")
            label = getattr(prediction, head)
            if getattr(example, head) is None and scores[label] >= threshold:
                setattr(example, head, label)
                example.guessed.add(head)
                added[head] += 1
    log.info("teacher %s labeled %s of %d examples missing a head", teacher, added, len(missing))
    return added


def long_examples(examples: Sequence[Example], count: int, rng: random.Random) -> list[Example]:
    """``count`` long texts, each 3 to 6 training texts of one sentiment joined: news articles are long
    and many training sets are headlines, and a model that saw only short texts reads length as
    neutrality. A joined text keeps the sentiment (a guess if any part's was) and no topic (its parts'
    topics differ)."""
    by_sentiment: dict[str, list[Example]] = {}
    for example in examples:
        if example.sentiment:
            by_sentiment.setdefault(example.sentiment, []).append(example)
    pools = [pool for _, pool in sorted(by_sentiment.items()) if len(pool) >= 3]
    made: list[Example] = []
    for i in range(count if pools else 0):
        pool = pools[i % len(pools)]
        parts = rng.sample(pool, min(len(pool), rng.randint(3, 6)))
        guessed = {"sentiment"} if any("sentiment" in p.guessed for p in parts) else set()
        text = " ".join(p.text.strip() for p in parts)
        made.append(Example(text, parts[0].sentiment, None, min(p.weight for p in parts), {"joined"}, guessed))
    return made


def class_weights(examples: Sequence[Example], head: str, power: float) -> torch.Tensor:
    """Per-class loss weights ``(count / mean count) ** -power`` from the people's labels (1 for an unseen
    class), normalised so the average example weighs 1: rare topics count more, without drowning the rest."""
    labels = HEADS[head]
    counts = Counter(getattr(e, head) for e in examples if getattr(e, head) and head not in e.guessed)
    present = [counts[label] for label in labels if counts[label]]
    if not present or power == 0:
        return torch.ones(len(labels))
    mean = sum(present) / len(present)
    raw = torch.tensor([(counts[label] / mean) ** -power if counts[label] else 1.0 for label in labels])
    total = sum(counts.values())
    average = sum(float(raw[i]) * counts[label] for i, label in enumerate(labels)) / max(1, total)
    return raw / average


def bucketed_batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of indices whose texts have similar lengths (less padding, same randomness
    across batches): shuffle, sort each run of ``BUCKET_BATCHES`` batches by length, cut, shuffle."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    span = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        run = sorted(order[start : start + span], key=lambda i: len(examples[i].text))
        batches.extend(run[i : i + batch_size] for i in range(0, len(run), batch_size))
    rng.shuffle(batches)
    return batches


def parameter_groups(model: nn.Module, learning_rate: float, weight_decay: float, decay: float) -> list[dict[str, Any]]:
    """Layer-wise learning-rate decay: the heads and the top layer learn at ``learning_rate``, each
    layer below at ``decay`` times the one above, the embeddings lowest; no weight decay on biases and
    layer norms."""
    layers = 1 + max((int(m.group(1)) for n, _ in model.named_parameters() if (m := _LAYER.search(n))), default=-1)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue  # frozen: no optimizer state for it
        if not name.startswith("encoder."):
            depth = 0
        elif match := _LAYER.search(name):
            depth = layers - int(match.group(1))
        elif ".embeddings." in name or name.startswith("encoder.embeddings"):
            depth = layers + 1
        else:
            depth = 0  # the pooler and anything above the layers
        plain = parameter.ndim == 1
        group = groups.setdefault(
            (depth, plain),
            {"params": [], "lr": learning_rate * decay**depth, "weight_decay": 0.0 if plain else weight_decay},
        )
        group["params"].append(parameter)
    return list(groups.values())
