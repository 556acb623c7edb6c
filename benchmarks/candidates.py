"""The model issue's table for candidate model folders, on one labeled validation split.

For each folder: sentiment and topic accuracy and macro-F1 of the variant finmon runs on this CPU
(int8), the lowest per-topic recall (and its topic), the fp32 accuracy its export recorded and the
int8 drop against it, and docs/s at batch 32 on the split's texts; the first folder is the baseline
of the ratios, measured in the same run.

    python benchmarks/candidates.py --validation CHECKPOINT/validation.jsonl models/default /tmp/new-model
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--validation", type=Path, required=True, help="JSONL: text, sentiment, topic")
    args = parser.parse_args()

    from models.artifact import load_artifact
    from models.evaluate import metrics
    from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
    from models.runtime import Classifier

    rows = [json.loads(line) for line in args.validation.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [r["text"] for r in rows]
    print(f"{len(rows)} validation examples from {args.validation}")
    header = (
        f"{'model':<28}{'sent acc':>9}{'sent F1':>9}{'topic acc':>10}{'topic F1':>9}{'min recall':>12}  {'(topic)':<24}"
        f"{'int8 drop s/t':>15}{'docs/s':>8}{'x base':>8}"
    )
    print(header)
    print("-" * len(header))
    base = None
    for folder in args.models:
        classifier = Classifier.load(folder, device="cpu", batch_size=32)
        began = time.perf_counter()
        predictions = classifier.predict(texts)
        speed = len(texts) / (time.perf_counter() - began)
        base = base or speed
        result = {}
        for head, labels in (("sentiment", SENTIMENT_LABELS), ("topic", TOPIC_LABELS)):
            pairs = [(r[head], getattr(p, head)) for r, p in zip(rows, predictions, strict=True) if r.get(head)]
            result[head] = metrics([t for t, _ in pairs], [p for _, p in pairs], labels)
        recalls = {k: v["recall"] for k, v in result["topic"]["per_class"].items() if v["support"]}
        worst = min(recalls, key=lambda k: recalls[k])
        export = load_artifact(folder).manifest.get("export", {}).get("validation_accuracy", {})
        drop = "/".join(f"{(v['fp32'] - v['int8']) * 100:+.2f}" for v in export.values()) if export else "n/a"
        print(
            f"{load_artifact(folder).version[:27]:<28}{result['sentiment']['accuracy']:>9.4f}"
            f"{result['sentiment']['macro_f1']:>9.4f}{result['topic']['accuracy']:>10.4f}{result['topic']['macro_f1']:>9.4f}"
            f"{recalls[worst]:>12.3f}  {worst[:24]:<24}{drop:>15}{speed:>8.0f}{speed / base:>7.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
