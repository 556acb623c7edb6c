"""The model table for candidate model folders, on one labeled report split.

For each folder: sentiment and topic accuracy and macro-F1 of the variant finmon runs on this CPU
(int8), the lowest per-topic recall (and its topic), the int8 drop against fp32 its export measured
(report split; older manifests: their validation split), and docs/s at batch 1 and batch 32 on the
split's texts; the first folder is the baseline of the ratios, measured in the same run.

    python benchmarks/candidates.py --report CHECKPOINT/report.jsonl models/default /tmp/new-model
    # leave out texts a model was trained on (JSONL with "text"), e.g. an older model's training split
    python benchmarks/candidates.py --report report.jsonl --exclude old-train.jsonl models/default ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rows_of(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def speed(classifier: object, texts: list[str], batch: int, seconds: float) -> float:
    """docs/s over repeated passes of ``texts`` in batches of ``batch`` for at least ``seconds``."""
    predict = classifier.predict  # type: ignore[attr-defined]
    predict(texts[: batch * 2])  # warm-up
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for start in range(0, len(texts), batch):
            predict(texts[start : start + batch])
            done += len(texts[start : start + batch])
            if time.perf_counter() - began >= seconds:
                break
    return done / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--report", type=Path, required=True, help="JSONL: text, sentiment, topic")
    parser.add_argument("--exclude", type=Path, action="append", help="JSONL whose texts are left out")
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per model and batch size")
    args = parser.parse_args()

    from models.artifact import load_artifact
    from models.evaluate import metrics
    from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
    from models.runtime import Classifier
    from models.text import dedup_key

    everything = rows_of(args.report)
    excluded = {dedup_key(r["text"]) for path in args.exclude or [] for r in rows_of(path)}
    rows = [r for r in everything if dedup_key(r["text"]) not in excluded]
    texts = [r["text"] for r in rows]
    left_out = f" ({len(everything) - len(rows)} left out: in --exclude)" if excluded else ""
    print(f"{len(rows)} report examples from {args.report}{left_out}")
    header = (
        f"{'model':<28}{'sent acc':>9}{'sent F1':>9}{'topic acc':>10}{'topic F1':>9}{'min recall':>12}  {'(topic)':<24}"
        f"{'int8 drop s/t':>15}{'b1 docs/s':>10}{'b32 docs/s':>11}{'x base':>8}"
    )
    print(header)
    print("-" * len(header))
    base = None
    for folder in args.models:
        classifier = Classifier.load(folder, device="cpu", batch_size=32)
        predictions = classifier.predict(texts)
        one = speed(Classifier.load(folder, device="cpu", batch_size=1), texts, 1, args.seconds)
        many = speed(classifier, texts, 32, args.seconds)
        base = base or many
        result = {}
        for head, labels in (("sentiment", SENTIMENT_LABELS), ("topic", TOPIC_LABELS)):
            pairs = [(r[head], getattr(p, head)) for r, p in zip(rows, predictions, strict=True) if r.get(head)]
            result[head] = metrics([t for t, _ in pairs], [p for _, p in pairs], labels)
        recalls = {k: v["recall"] for k, v in result["topic"]["per_class"].items() if v["support"]}
        worst = min(recalls, key=lambda k: recalls[k])
        manifest = load_artifact(folder).manifest
        export = manifest.get("export", {})
        gate = export.get("report_accuracy") or export.get("validation_accuracy") or {}
        drop = "/".join(f"{(v['fp32'] - v['int8']) * 100:+.2f}" for v in gate.values()) if gate else "n/a"
        print(
            f"{load_artifact(folder).version[:27]:<28}{result['sentiment']['accuracy']:>9.4f}"
            f"{result['sentiment']['macro_f1']:>9.4f}{result['topic']['accuracy']:>10.4f}{result['topic']['macro_f1']:>9.4f}"
            f"{recalls[worst]:>12.3f}  {worst[:24]:<24}{drop:>15}{one:>10.0f}{many:>11.0f}{many / base:>7.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
