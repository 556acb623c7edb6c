"""Bodies of 99,000 characters of each kind that once cost seconds to minutes outside the model:
shared by the adversarial-input test and ``benchmarks/pipeline.py --adversarial``."""

from __future__ import annotations

SIZE = 99_000
UNITS = {
    "an everyday-word company name": "Target ",
    "cashtags": "$TSLA ",
    "research houses quoted": "Wells Fargo at Citi says ",
    "Chinese with exchange codes": "贵州茅台(600519)一季度净利润同比下滑12%，",
    "one word": "x",
    "title-case names": "Apple Meta Visa Shell Ford Gap ",
}


def adversarial_bodies(size: int = SIZE) -> dict[str, str]:
    return {name: (unit * (size // len(unit) + 1))[:size] for name, unit in UNITS.items()}
