"""Classification metrics in plain numpy: accuracy, macro-F1, per-class F1, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Rows are true labels, columns predicted labels, in ``labels`` order."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for true, pred in zip(truth, predicted, strict=True):
        matrix[index[true], index[pred]] += 1
    return matrix


def metrics(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, object]:
    """Accuracy, macro-F1 over classes present in the truth, per-class precision/recall/F1."""
    matrix = confusion_matrix(truth, predicted, labels)
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    per_class: dict[str, dict[str, float | int]] = {}
    f1_present = []
    for i, label in enumerate(labels):
        tp = int(matrix[i, i])
        support = int(matrix[i].sum())
        predicted_count = int(matrix[:, i].sum())
        precision = tp / predicted_count if predicted_count else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": support,
        }
        if support:
            f1_present.append(f1)
    return {
        "accuracy": round(correct / total, 4) if total else 0.0,
        "macro_f1": round(float(np.mean(f1_present)), 4) if f1_present else 0.0,
        "support": total,
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }


def format_report(title: str, result: dict[str, object]) -> str:
    """A terminal report: headline numbers, per-class table and the confusion matrix."""
    labels = list(result["labels"])  # type: ignore[call-overload]
    per_class: dict[str, dict[str, float]] = result["per_class"]  # type: ignore[assignment]
    width = max(len(label) for label in labels) + 2
    lines = [
        f"{title}: accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  n={result['support']}",
        f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
    ]
    for label in labels:
        row = per_class[label]
        lines.append(
            f"{label:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10}"
        )
    lines.append("confusion matrix (rows: true, columns: predicted, in the order above)")
    for label, row in zip(labels, result["confusion_matrix"], strict=True):  # type: ignore[call-overload]
        lines.append(f"{label:<{width}}" + " ".join(f"{v:>5}" for v in row))
    return "\n".join(lines)
