"""Chinese models on the Chinese evaluation sets written for finmon (never trained on).

    python benchmarks/chinese.py [MODEL...]      # default: models/multilingual and models/chinese

For each model folder and each part (the 26 articles and 44 headlines of benchmarks/data/zh_news.jsonl,
the 60 headlines of benchmarks/data/zh_headlines.csv): sentiment accuracy over the three classes,
polarity accuracy (positive and negative items only; an answer of neutral counts as wrong), the same
when the model must choose between positive and negative (the larger of their two scores), topic
accuracy, and docs/s at batch 32 on the part's texts; the first model is the baseline of the ratios,
measured in the same run. See docs/chinese-data.md for how the sets were written and labeled.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HERE = Path(__file__).resolve().parent


def parts() -> dict[str, list[dict[str, str]]]:
    news = [json.loads(line) for line in (HERE / "data" / "zh_news.jsonl").read_text("utf-8").splitlines()]
    with (HERE / "data" / "zh_headlines.csv").open(encoding="utf-8", newline="") as handle:
        headlines = [
            {"text": r["zh"], "sentiment": r["sentiment"], "topic": r["topic"]} for r in csv.DictReader(handle)
        ]
    return {
        "zh_news articles": [r for r in news if r["kind"] == "article"],
        "zh_news headlines": [r for r in news if r["kind"] == "headline"],
        "zh_headlines": headlines,
    }


def main() -> int:
    from models.runtime import Classifier
    from models.settings import CHINESE_MODEL_DIR, MULTILINGUAL_MODEL_DIR

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="*", default=[MULTILINGUAL_MODEL_DIR, CHINESE_MODEL_DIR])
    parser.add_argument("--seconds", type=float, default=5.0, help="timing per model and part")
    args = parser.parse_args()

    header = f"{'model':<30}{'part':<19}{'n':>4}{'sent3':>7}{'polarity':>9}{'pos/neg':>8}{'topic':>7}"
    header += f"{'docs/s':>8}{'x base':>8}"
    print(header)
    print("-" * len(header))
    base: dict[str, float] = {}
    for folder in args.models:
        classifier = Classifier.load(folder, device="cpu", batch_size=32)
        for part, rows in parts().items():
            predictions = classifier.predict([r["text"] for r in rows])
            pairs = list(zip(rows, predictions, strict=True))
            polar = [(r, p) for r, p in pairs if r["sentiment"] != "neutral"]
            three = sum(r["sentiment"] == p.sentiment for r, p in pairs) / len(pairs)
            polarity = sum(r["sentiment"] == p.sentiment for r, p in polar) / len(polar)
            chosen = sum(
                r["sentiment"] == max(("positive", "negative"), key=lambda label: p.sentiment_scores[label])
                for r, p in polar
            ) / len(polar)
            topic = sum(r["topic"] == p.topic for r, p in pairs) / len(pairs)
            speed = docs_per_second(classifier, [r["text"] for r in rows], args.seconds)
            base.setdefault(part, speed)
            print(
                f"{classifier.version[:29]:<30}{part:<19}{len(rows):>4}{three:>7.3f}{polarity:>9.3f}{chosen:>8.3f}"
                f"{topic:>7.3f}{speed:>8.0f}{speed / base[part]:>7.2f}x"
            )
    return 0


def docs_per_second(classifier, texts: list[str], seconds: float) -> float:  # type: ignore[no-untyped-def]
    classifier.predict(texts[:32])  # warm up
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for start in range(0, len(texts), 32):
            classifier.predict(texts[start : start + 32])
            done += len(texts[start : start + 32])
    return done / (time.perf_counter() - began)


if __name__ == "__main__":
    sys.exit(main())
