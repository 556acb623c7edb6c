import pytest

from models.compare import compare
from models.runtime import Prediction


def prediction(sentiment: str, topic: str, score: float, version: str) -> Prediction:
    return Prediction(topic, {topic: 0.9}, sentiment, {}, score, version)


OLD = [
    prediction("negative", "Macro", -0.9, "v1"),
    prediction("neutral", "Macro", 0.0, "v1"),
    prediction("positive", "Earnings", 0.8, "v1"),
    prediction("neutral", "Earnings", 0.1, "v1"),
]
NEW = [
    prediction("negative", "Macro", -0.8, "v2"),
    prediction("negative", "Macro", -0.7, "v2"),
    prediction("positive", "Macro", 0.9, "v2"),
    prediction("positive", "Earnings", 0.3, "v2"),
]
IDS = ["a", "b", "c", "d"]
TEXTS = ["Rates jump", "Fed minutes", "Record quarter", "Guidance kept"]


def test_agreement_confusion_and_flips() -> None:
    report = compare(IDS, TEXTS, OLD, NEW, top=5)
    assert (report["old_version"], report["new_version"], report["documents"]) == ("v1", "v2", 4)
    assert report["agreement"] == {"sentiment": 0.5, "topic": 0.75}
    assert report["confusion"]["sentiment"]["neutral"] == {"negative": 1, "neutral": 0, "positive": 1}
    assert report["confusion"]["topic"]["Earnings"]["Macro"] == 1
    assert [f["id"] for f in report["flips"]] == ["b", "d"]  # largest score change first
    assert report["flips"][0]["change"] == pytest.approx(-0.7)
    assert compare(IDS, TEXTS, OLD, NEW, top=1)["flips"][0]["id"] == "b"


def test_negative_share_per_topic_as_each_version_assigns_topics() -> None:
    shares = compare(IDS, TEXTS, OLD, NEW)["negative_share"]
    assert shares["Macro"] == {
        "old_documents": 2,
        "new_documents": 3,
        "old_negative_share": 0.5,
        "new_negative_share": pytest.approx(2 / 3, abs=1e-6),
        "change": pytest.approx(2 / 3 - 0.5, abs=1e-6),
    }
    assert shares["Earnings"]["new_negative_share"] == 0.0 and "Fed / Central Banks" not in shares


def test_accuracy_of_both_versions_on_labeled_documents() -> None:
    gold = {"sentiment": ["negative", "negative", None, "positive"]}
    accuracy = compare(IDS, TEXTS, OLD, NEW, gold)["accuracy"]["sentiment"]
    assert accuracy["labeled"] == 3
    assert accuracy["old"] == pytest.approx(1 / 3, abs=1e-4) and accuracy["new"] == pytest.approx(1.0)


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        compare(IDS[:3], TEXTS, OLD, NEW)
