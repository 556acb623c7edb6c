"""What changes when one model version replaces another, over the same documents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from models.evaluate import metrics
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS, labels_for
from models.runtime import Prediction

HEADS = ("sentiment", "topic")


def compare(
    ids: Sequence[str],
    texts: Sequence[str],
    old: Sequence[Prediction],
    new: Sequence[Prediction],
    gold: Mapping[str, Sequence[str | None]] | None = None,
    top: int = 20,
) -> dict[str, Any]:
    """Agreement and confusion per head, the largest sentiment flips, per-topic negative share,
    and accuracy of both versions where gold labels are given."""
    if not len(ids) == len(texts) == len(old) == len(new):
        raise ValueError("ids, texts and both prediction lists must have the same length")
    n = len(ids)
    report: dict[str, Any] = {
        "documents": n,
        "old_version": old[0].model_version if old else None,
        "new_version": new[0].model_version if new else None,
        "agreement": {},
        "confusion": {},
    }
    for head in HEADS:
        pairs = [(getattr(o, head), getattr(w, head)) for o, w in zip(old, new, strict=True)]
        report["agreement"][head] = round(sum(a == b for a, b in pairs) / n, 6) if n else 0.0
        counts = Counter(pairs)
        labels = labels_for(head)
        report["confusion"][head] = {a: {b: counts.get((a, b), 0) for b in labels} for a in labels}
    report["flips"] = _flips(ids, texts, old, new, top)
    report["negative_share"] = _negative_share(old, new)
    if gold:
        report["accuracy"] = _accuracy(old, new, gold)
    return report


def _flips(
    ids: Sequence[str], texts: Sequence[str], old: Sequence[Prediction], new: Sequence[Prediction], top: int
) -> list[dict[str, Any]]:
    changed = [i for i in range(len(ids)) if old[i].sentiment != new[i].sentiment]
    changed.sort(key=lambda i: (-abs(new[i].score - old[i].score), ids[i]))
    return [
        {
            "id": ids[i],
            "text": texts[i][:300],
            "old": old[i].sentiment,
            "new": new[i].sentiment,
            "old_score": old[i].score,
            "new_score": new[i].score,
            "change": round(new[i].score - old[i].score, 6),
        }
        for i in changed[:top]
    ]


def _negative_share(old: Sequence[Prediction], new: Sequence[Prediction]) -> dict[str, dict[str, Any]]:
    """Per topic, as each version assigns topics: documents, negative share, and the change."""
    out: dict[str, dict[str, Any]] = {}
    for topic in TOPIC_LABELS:
        before = [p for p in old if p.topic == topic]
        after = [p for p in new if p.topic == topic]
        if not before and not after:
            continue
        share_old = _share(before)
        share_new = _share(after)
        out[topic] = {
            "old_documents": len(before),
            "new_documents": len(after),
            "old_negative_share": share_old,
            "new_negative_share": share_new,
            "change": round(share_new - share_old, 6),
        }
    return out


def _share(predictions: Sequence[Prediction]) -> float:
    if not predictions:
        return 0.0
    return round(sum(p.sentiment == SENTIMENT_LABELS[0] for p in predictions) / len(predictions), 6)


def _accuracy(
    old: Sequence[Prediction], new: Sequence[Prediction], gold: Mapping[str, Sequence[str | None]]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for head, truth in gold.items():
        rows = [i for i, label in enumerate(truth) if label is not None]
        if not rows:
            continue
        labels = labels_for(head)
        expected = [str(truth[i]) for i in rows]
        out[head] = {
            "labeled": len(rows),
            "old": metrics(expected, [getattr(old[i], head) for i in rows], labels)["accuracy"],
            "new": metrics(expected, [getattr(new[i], head) for i in rows], labels)["accuracy"],
        }
    return out
