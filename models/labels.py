"""The label sets of the two heads, in the order the model's outputs use."""

from __future__ import annotations

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

TOPIC_LABELS: tuple[str, ...] = (
    "Analyst Update",
    "Fed / Central Banks",
    "Company / Product News",
    "Treasuries / Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy / Oil",
    "Financials",
    "Currencies",
    "General News / Opinion",
    "Gold / Metals / Materials",
    "IPO",
    "Legal / Regulation",
    "M&A / Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)

# Integer labels of the Twitter Financial News sentiment set: 0 Bearish, 1 Bullish, 2 Neutral.
SENTIMENT_INT_LABELS: dict[int, str] = {0: "negative", 1: "positive", 2: "neutral"}

SENTIMENT_ALIASES: dict[str, str] = {
    "negative": "negative",
    "bearish": "negative",
    "neutral": "neutral",
    "positive": "positive",
    "bullish": "positive",
}

HEADS: tuple[str, ...] = ("sentiment", "topic")


def labels_for(head: str) -> tuple[str, ...]:
    """Return the ordered labels of ``head`` (``sentiment`` or ``topic``)."""
    if head == "sentiment":
        return SENTIMENT_LABELS
    if head == "topic":
        return TOPIC_LABELS
    raise ValueError(f"unknown head {head!r}; expected one of {', '.join(HEADS)}")


def parse_label(head: str, raw: object) -> str:
    """Map a label as written in a data file (name, alias or integer) to a canonical name."""
    labels = labels_for(head)
    if isinstance(raw, bool):
        raise ValueError(f"{head} label must be a name or an integer, got {raw!r}")
    text = str(raw).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if head == "sentiment":
            if index not in SENTIMENT_INT_LABELS:
                raise ValueError(f"sentiment label {index} is not 0, 1 or 2")
            return SENTIMENT_INT_LABELS[index]
        if not 0 <= index < len(labels):
            raise ValueError(f"topic label {index} is outside 0..{len(labels) - 1}")
        return labels[index]
    if head == "sentiment":
        canonical = SENTIMENT_ALIASES.get(text.lower())
        if canonical is None:
            raise ValueError(f"unknown sentiment label {text!r}")
        return canonical
    by_lower = {name.lower(): name for name in labels}
    if text.lower() not in by_lower:
        raise ValueError(f"unknown topic label {text!r}")
    return by_lower[text.lower()]
