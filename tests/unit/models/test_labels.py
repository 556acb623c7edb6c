import pytest

from models.labels import SENTIMENT_LABELS, TOPIC_LABELS, labels_for, parse_label


def test_label_sets_have_the_documented_sizes_and_order() -> None:
    assert SENTIMENT_LABELS == ("negative", "neutral", "positive")
    assert len(TOPIC_LABELS) == 20
    assert TOPIC_LABELS[0] == "Analyst Update"
    assert TOPIC_LABELS[4] == "Dividend"
    assert TOPIC_LABELS[19] == "Stock Movement"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, "negative"),
        ("1", "positive"),
        (2, "neutral"),
        ("Bearish", "negative"),
        ("bullish", "positive"),
        ("NEUTRAL", "neutral"),
    ],
)
def test_sentiment_labels_follow_the_bearish_bullish_neutral_convention(raw: object, expected: str) -> None:
    assert parse_label("sentiment", raw) == expected


def test_topic_labels_by_index_or_name() -> None:
    assert parse_label("topic", "5") == "Earnings"
    assert parse_label("topic", "gold / metals / materials") == "Gold / Metals / Materials"


@pytest.mark.parametrize(
    ("head", "raw"),
    [("sentiment", 3), ("sentiment", "meh"), ("topic", 20), ("topic", -1), ("topic", "Sports"), ("sentiment", True)],
)
def test_unknown_labels_are_rejected(head: str, raw: object) -> None:
    with pytest.raises(ValueError):
        parse_label(head, raw)


def test_unknown_head() -> None:
    with pytest.raises(ValueError, match="unknown head"):
        labels_for("emotion")
