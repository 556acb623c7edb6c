"""Company linking against a labeled set built from the training data.

Headlines of the form ``$TICKER - Company ...`` name their subject twice: the cashtag, and the
company's name in the text. With the cashtag removed (and every other one), the subject ticker must
come back from the name alone. Reports recall (the subject among the linked subjects), precision
(linked subjects that are the labeled one: a second real company counts against it, so this is a
lower bound), and subjects per headline, overall and for constituents of the indices finmon's
universe covers, beside the cashtag-only tagger finmon had before, measured in the same run.

    python benchmarks/linking.py ../shared/data/twitter_fin_sentiment/sent_train.csv \\
        ../shared/data/twitter_fin_topic/topic_train.csv [--show 20]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LABELED = re.compile(r"^\$([A-Z]{1,5}(?:\.[A-Z])?) - (.+)$")
LINK = re.compile(r"https?://\S+")
CASHTAG = re.compile(r"\$[A-Za-z]{1,5}(?:\.[A-Za-z]{1,2})?\b")


def labeled_set(paths: list[Path]) -> list[tuple[str, str]]:
    """(ticker, headline without cashtags) for every distinct ``$TICKER - ...`` headline."""
    seen: dict[str, str] = {}
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                match = LABELED.match((row.get("text") or "").strip())
                if match:
                    text = CASHTAG.sub("", LINK.sub("", match.group(2))).strip(" -")
                    seen.setdefault(text, match.group(1))
    return [(ticker, text) for text, ticker in seen.items()]


def score(rows: list[tuple[str, list[str]]]) -> dict[str, float]:
    hits = sum(gold in found for gold, found in rows)
    linked = sum(len(found) for _, found in rows)
    correct = sum(found.count(gold) for gold, found in rows)
    return {
        "headlines": len(rows),
        "recall": hits / len(rows) if rows else 0.0,
        "precision": correct / linked if linked else 0.0,
        "per_headline": linked / len(rows) if rows else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, nargs="+", help="CSV files with a text column")
    parser.add_argument("--show", type=int, default=0, help="print this many misses and wrong links")
    args = parser.parse_args()

    from streams.core.companies import linker_for, subjects, universe
    from streams.core.tickers import tag

    data = labeled_set(args.data)
    began = time.perf_counter()
    linker = linker_for()
    built = time.perf_counter() - began
    constituents = {c.ticker for c in universe() if c.indices}
    began = time.perf_counter()
    linked = [(gold, subjects(linker.link(text))) for gold, text in data]
    per_doc = (time.perf_counter() - began) / max(1, len(data))
    cashtags = [(gold, tag(text)) for gold, text in data]

    print(f"{len(data)} labeled headlines; linker built in {built:.2f} s, {per_doc * 1e6:.0f} us a headline")
    print(f"{'tagger':<16}{'set':<22}{'headlines':>10}{'recall':>9}{'precision':>11}{'per headline':>14}")
    for name, rows in (("cashtags only", cashtags), ("linker", linked)):
        for label, subset in (
            ("all", rows),
            ("index constituents", [r for r in rows if r[0] in constituents]),
        ):
            m = score(subset)
            print(
                f"{name:<16}{label:<22}{m['headlines']:>10.0f}{m['recall']:>9.3f}{m['precision']:>11.3f}"
                f"{m['per_headline']:>14.2f}"
            )
    if args.show:
        print("\nconstituents missed or linked wrongly:")
        shown = 0
        for (gold, text), (_, found) in zip(data, linked, strict=True):
            if gold in constituents and found != [gold] and shown < args.show:
                print(f"  {gold:<6} {found!s:<18} {text[:90]}")
                shown += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
