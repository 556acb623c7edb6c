"""The model folder committed with finmon: intact, documented, and right on unambiguous headlines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.artifact import load_artifact, sha256_of
from models.runtime import CPU, Classifier
from models.settings import CHINESE_MODEL_DIR, DEFAULT_MODEL_DIR, MULTILINGUAL_MODEL_DIR

pytestmark = pytest.mark.integration
ZH_NEWS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "zh_news.jsonl"

HEADLINES = [
    ("Siemens issues profit warning, shares slump 12% as orders collapse", "negative"),
    ("Boeing cuts full-year delivery outlook after new production halt", "negative"),
    ("Moody's downgrades Intel to junk, citing mounting losses", "negative"),
    ("Apple raises quarterly dividend by 10% and expands buyback", "positive"),
    ("Nvidia beats estimates and raises guidance on record data-center demand", "positive"),
    ("Microsoft shares jump to all-time high after strong cloud growth", "positive"),
]
TOPICS = [
    ("Apple declares quarterly dividend of 25 cents per share", "Dividend"),
    ("Oil prices climb as OPEC+ extends production cuts", "Energy / Oil"),
    ("Fed's Powell signals rate cuts may come later this year", "Fed / Central Banks"),
]


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.load(DEFAULT_MODEL_DIR, device="cpu")


def test_every_file_matches_its_manifest_checksum() -> None:
    artifact = load_artifact(DEFAULT_MODEL_DIR)
    files = artifact.manifest["files"]
    assert set(files) >= {"model.int8.onnx", "model.fp16.onnx", "tokenizer.json", "labels.json"}
    for name, digest in files.items():
        assert sha256_of(DEFAULT_MODEL_DIR / name) == digest


def test_manifest_documents_data_license_and_metrics() -> None:
    manifest = load_artifact(DEFAULT_MODEL_DIR).manifest
    names = {d["name"] for d in manifest["datasets"]}
    assert names == {"zeroshot/twitter-financial-news-sentiment", "zeroshot/twitter-financial-news-topic"}
    assert {d["license"] for d in manifest["datasets"]} == {"MIT"}
    for head in ("sentiment", "topic"):
        result = manifest["metrics"]["validation_int8"][head]
        assert result["accuracy"] > 0.8
        assert len(result["confusion_matrix"]) == (3 if head == "sentiment" else 20)
    export = manifest["export"]
    for head, accuracy in export["validation_accuracy"].items():
        assert accuracy["fp32"] - accuracy["int8"] <= export["max_int8_accuracy_drop"], head


def test_unambiguous_headlines_get_the_right_sentiment(shipped: Classifier) -> None:
    predictions = shipped.predict([text for text, _ in HEADLINES])
    assert [p.sentiment for p in predictions] == [label for _, label in HEADLINES]
    assert all(p.score < -0.5 for p, (_, label) in zip(predictions, HEADLINES, strict=True) if label == "negative")
    assert all(p.score > 0.5 for p, (_, label) in zip(predictions, HEADLINES, strict=True) if label == "positive")


def test_clear_topics(shipped: Classifier) -> None:
    assert [p.topic for p in shipped.predict([t for t, _ in TOPICS])] == [label for _, label in TOPICS]


def test_runs_on_cpu_int8_here(shipped: Classifier) -> None:
    assert (shipped.provider, shipped.precision) == (CPU, "int8")
    assert shipped.version == load_artifact(DEFAULT_MODEL_DIR).version


MORE = [
    "Tesla recalls 120,000 vehicles over faulty seat belts",
    "Amazon to cut 9,000 more jobs as cloud growth slows",
    "Goldman Sachs upgrades Ford to buy on EV margins",
    "ECB holds rates steady, signals patience on cuts",
    "Gold hits record as dollar weakens",
    "Pfizer wins FDA approval for new RSV vaccine",
    "Credit Suisse shares crash to record low",
    "Exxon posts record annual profit on high oil prices",
    "Bitcoin falls 8% after exchange halts withdrawals",
    "Unilever names new CEO as activist pressure builds",
    "Netflix subscriber growth beats forecasts, stock soars",
    "US jobless claims rise more than expected",
    "Chevron to buy Hess in $53 billion deal",
    "Walmart lifts annual sales forecast",
    "China's factory activity shrinks for third month",
]


def test_the_fp16_variant_with_io_binding_agrees_with_int8_on_the_cpu(shipped: Classifier) -> None:
    """The GPU path (fp16 variant, IO binding) checked on the CPU provider against the CPU default."""
    texts = [t for t, _ in HEADLINES] + [t for t, _ in TOPICS] + MORE
    gpu_like = Classifier.load(DEFAULT_MODEL_DIR, device="cpu", precision="fp16", io_binding=True)
    pairs = list(zip(gpu_like.predict(texts), shipped.predict(texts), strict=True))
    sentiment = sum(a.sentiment == b.sentiment for a, b in pairs) / len(pairs)
    topic = sum(a.topic == b.topic for a, b in pairs) / len(pairs)
    assert sentiment >= 0.95 and topic >= 0.95, (sentiment, topic)
    assert max(abs(a.score - b.score) for a, b in pairs) < 0.2


HEADLINES_ZH = [
    ("贵州茅台股价暴跌8%，创年内新低", "negative"),
    ("比亚迪发布盈利预警，净利润同比下滑30%", "negative"),
    ("小米集团季度亏损扩大，股价下跌9%", "negative"),
    ("宁德时代发布业绩预告，上半年利润预增超五成", "positive"),
    ("比亚迪10月新能源汽车销量创历史新高", "positive"),
    ("五粮液宣布每股派息提高20%", "positive"),
    ("腾讯控股任命新任首席财务官", "neutral"),
]


@pytest.fixture(scope="module")
def multilingual() -> Classifier:
    return Classifier.load(MULTILINGUAL_MODEL_DIR, device="cpu")


def test_the_multilingual_model_is_intact_and_says_where_its_weights_came_from() -> None:
    artifact = load_artifact(MULTILINGUAL_MODEL_DIR)
    for name, digest in artifact.manifest["files"].items():
        assert sha256_of(MULTILINGUAL_MODEL_DIR / name) == digest
    imported = artifact.manifest["base_model"]["imported"]
    assert imported["name"] == "intfloat/multilingual-e5-small" and "4-bit" in imported["weights"]
    assert imported["engine_check"]["min_cosine"] >= 0.999
    assert {d["license"] for d in artifact.manifest["datasets"]} == {"MIT"}
    export = artifact.manifest["export"]
    for head, accuracy in export["validation_accuracy"].items():
        assert accuracy["fp32"] - accuracy["int8"] <= export["max_int8_accuracy_drop"], head


def test_unambiguous_chinese_headlines_get_the_right_sentiment(multilingual: Classifier) -> None:
    predictions = multilingual.predict([text for text, _ in HEADLINES_ZH])
    assert [p.sentiment for p in predictions] == [label for _, label in HEADLINES_ZH]
    assert (multilingual.provider, multilingual.precision) == (CPU, "int8")


@pytest.fixture(scope="module")
def chinese() -> Classifier:
    return Classifier.load(CHINESE_MODEL_DIR, device="cpu")


def test_the_chinese_model_is_intact_and_says_where_its_weights_and_labels_came_from() -> None:
    artifact = load_artifact(CHINESE_MODEL_DIR)
    for name, digest in artifact.manifest["files"].items():
        assert sha256_of(CHINESE_MODEL_DIR / name) == digest
    imported = artifact.manifest["base_model"]["imported"]
    assert imported["name"] == "BAAI/bge-small-zh-v1.5" and imported["license"] == "MIT"
    assert imported["parity"]["max_abs_diff"] <= 1e-4
    assert {d["license"] for d in artifact.manifest["datasets"]} == {"MIT", "Apache-2.0"}
    export = artifact.manifest["export"]
    for head, accuracy in export["report_accuracy"].items():
        assert accuracy["fp32"] - accuracy["int8"] <= export["max_int8_accuracy_drop"], head


def test_chinese_articles_and_headlines_get_their_polarity(chinese: Classifier) -> None:
    """The evaluation set's articles (never trained on): the shipped model reads all 26 right."""
    rows = [json.loads(line) for line in ZH_NEWS.read_text("utf-8").splitlines()]
    articles = [r for r in rows if r["kind"] == "article"]
    predicted = chinese.predict([r["text"] for r in articles])
    right = sum(r["sentiment"] == p.sentiment for r, p in zip(articles, predicted, strict=True))
    assert right >= 24, right
    polar = [(text, label) for text, label in HEADLINES_ZH if label != "neutral"]
    predictions = chinese.predict([text for text, _ in polar])
    assert sum(p.sentiment == label for p, (_, label) in zip(predictions, polar, strict=True)) >= len(polar) - 1
    assert all(p.score < -0.5 for p, (_, label) in zip(predictions, polar, strict=True) if label == "negative")
