"""Chinese and English, per model: accuracy on finmon's hand-checked Chinese headlines (each with an
English translation of the same story), cross-lingual agreement, and CPU docs/s per model and
language, the English model on English text being the baseline of the ratios (same run).

    python benchmarks/multilingual.py [--english models/default] [--multilingual models/multilingual]

The set (benchmarks/data/zh_headlines.csv, 60 headlines: 20 positive, 20 negative, 20 neutral, over
17 topics) was written for finmon in the style of Chinese financial wires about Shanghai, Shenzhen
and Hong Kong listings, each headline labeled by its author and translated to English by hand. It
is small: a smoke measure of cross-lingual transfer (one headline is 1.7 points), not a benchmark.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HERE = Path(__file__).resolve().parent


def main() -> int:
    from models.evaluate import metrics
    from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
    from models.runtime import Classifier
    from models.settings import DEFAULT_MODEL_DIR, MULTILINGUAL_MODEL_DIR

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--english", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--multilingual", type=Path, default=MULTILINGUAL_MODEL_DIR)
    parser.add_argument("--data", type=Path, default=HERE / "data" / "zh_headlines.csv")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per cell")
    args = parser.parse_args()

    with args.data.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    models = {
        "english": Classifier.load(args.english, device="cpu", batch_size=32),
        "multilingual": Classifier.load(args.multilingual, device="cpu", batch_size=32),
    }
    print(f"{len(rows)} headlines in Chinese and English ({args.data.name})")
    header = f"{'model':<14}{'text':<6}{'sent acc':>9}{'sent F1':>9}{'topic acc':>10}{'topic F1':>9}"
    print(header)
    print("-" * len(header))
    answers = {}
    for name, classifier in models.items():
        for lang in ("zh", "en"):
            predictions = classifier.predict([r[lang] for r in rows])
            answers[name, lang] = predictions
            s = metrics([r["sentiment"] for r in rows], [p.sentiment for p in predictions], SENTIMENT_LABELS)
            t = metrics([r["topic"] for r in rows], [p.topic for p in predictions], TOPIC_LABELS)
            print(
                f"{name:<14}{lang:<6}{s['accuracy']:>9.3f}{s['macro_f1']:>9.3f}{t['accuracy']:>10.3f}{t['macro_f1']:>9.3f}"
            )
    print()
    for name in models:
        same = sum(a.sentiment == b.sentiment for a, b in zip(answers[name, "zh"], answers[name, "en"], strict=True))
        print(f"{name}: the same sentiment for a headline and its translation in {same}/{len(rows)}")
    routed = sum(
        a.sentiment == b.sentiment for a, b in zip(answers["multilingual", "zh"], answers["english", "en"], strict=True)
    )
    print(f"multilingual on Chinese vs English model on the translation: {routed}/{len(rows)} agree")

    print()
    header = f"{'model':<14}{'text':<6}{'batch':>6}{'docs/s':>9}{'x base':>8}"
    print(header)
    print("-" * len(header))
    base = None
    for batch in (1, 32):
        for name, classifier in models.items():
            for lang in ("en", "zh"):
                classifier.batch_size = batch
                speed = docs_per_second(classifier, [r[lang] for r in rows], batch, args.seconds)
                if name == "english" and lang == "en":  # the baseline of this batch size
                    base = speed
                print(f"{name:<14}{lang:<6}{batch:>6}{speed:>9.1f}{speed / (base or speed):>7.2f}x")
    return 0


def docs_per_second(classifier, texts: list[str], batch: int, seconds: float) -> float:  # type: ignore[no-untyped-def]
    chunk = (texts * ((batch // len(texts)) + 1))[: max(batch, len(texts))]
    classifier.predict(chunk[:batch])  # warm up
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for start in range(0, len(chunk), batch):
            classifier.predict(chunk[start : start + batch])
            done += len(chunk[start : start + batch])
    return done / (time.perf_counter() - began)


if __name__ == "__main__":
    sys.exit(main())
