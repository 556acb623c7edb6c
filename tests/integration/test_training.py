"""A tiny real training run of the shipped base encoder: train -> export -> parity -> score."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [train] extra is part of the test setup (make test installs it)")

from models.artifact import load_artifact
from models.errors import ExportCheckError
from monitor.cli import main

pytestmark = pytest.mark.integration

TINY_RUN = ["--batch-size", "8", "--max-length", "32", "--validation-fraction", "0.25"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"]


def write_data(folder: Path) -> tuple[Path, Path]:
    rng = random.Random(3)
    sentiment = folder / "sentiment.csv"
    topic = folder / "topic.jsonl"
    rows = ["text,label"]
    for i, company in enumerate(COMPANIES * 3):
        rows.append(f"{company} shares plunge {i}% after profit warning,0")
        rows.append(f"{company} raises full-year guidance as sales jump {i}%,1")
        rows.append(f"{company} to present at investor conference on day {i},2")
    rows.append("Acme shares plunge 0% after profit warning https://t.co/dup,0")  # a repost
    sentiment.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with topic.open("w", encoding="utf-8") as handle:
        for i, company in enumerate(COMPANIES * 2):
            handle.write(
                json.dumps(
                    {
                        "text": f"{company} declares quarterly dividend of {rng.randint(1, 90)} cents",
                        "label": "Dividend",
                    }
                )
                + "\n"
            )
            handle.write(
                json.dumps({"text": f"Oil rises {i}% as {company} sees tight supply", "label": "Energy / Oil"}) + "\n"
            )
    return sentiment, topic


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train")
    sentiment, topic = write_data(folder)
    code = main(
        [
            "train",
            "--sentiment-data",
            str(sentiment),
            "--topic-data",
            str(topic),
            "--output",
            str(folder / "model"),
            "--checkpoint",
            str(folder / "checkpoint"),
            "--max-steps",
            "4",
            *TINY_RUN,
            "--model-version",
            "test-tiny",
            "--max-int8-drop",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    return folder


def test_training_writes_a_complete_checked_model_folder(trained: Path) -> None:
    artifact = load_artifact(trained / "model")
    manifest = artifact.manifest
    assert artifact.version == "test-tiny"
    assert set(artifact.variants) == {"int8", "fp16"}
    assert not (trained / "model" / "model.fp32.onnx").exists()
    assert manifest["export"]["parity_max_abs_diff"] <= manifest["export"]["parity_atol"] == 1e-4
    export = manifest["export"]
    assert set(export["int8_agreement"]) == set(export["validation_accuracy"]) == {"sentiment", "topic"}
    for head, accuracy in export["validation_accuracy"].items():
        # the export's fp32 check scores the same split as the training's own evaluation
        assert accuracy["fp32"] == round(manifest["metrics"]["validation_fp32"][head]["accuracy"], 4)
    assert "Attention" in export["quantization"] and export["int8_fp32_nodes"] == []
    assert manifest["examples"]["read"] == 8 * 3 * 3 + 1 + 8 * 2 * 2
    assert manifest["examples"]["after_dedup"] == manifest["examples"]["read"] - 1
    for variant in ("validation_fp32", "validation_int8"):
        for head in ("sentiment", "topic"):
            assert 0.0 <= manifest["metrics"][variant][head]["accuracy"] <= 1.0
            assert "confusion_matrix" in manifest["metrics"][variant][head]
    assert {d["head"] for d in manifest["datasets"]} == {"sentiment", "topic"}
    assert manifest["hyperparameters"]["max_steps"] == 4
    assert manifest["history"][0]["step"] == 4


def test_the_trained_model_scores_a_file(trained: Path) -> None:
    source = trained / "docs.jsonl"
    source.write_text('{"id": "x1", "text": "Hooli shares plunge after profit warning"}\n{"id": "x2", "text": ""}\n')
    out = trained / "scored.jsonl"
    assert (
        main(
            ["score", "--input", str(source), "--output", str(out), "--model", str(trained / "model"), "--no-progress"]
        )
        == 0
    )
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["id"] == "x1" and first["model_version"] == "test-tiny"
    assert first["sentiment"] in ("negative", "neutral", "positive")
    assert second["error"]["reason"] == "empty_text"


def test_export_from_checkpoint_reproduces_the_model(trained: Path) -> None:
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(trained / "checkpoint"),
                "--output",
                str(trained / "again"),
                "--max-int8-drop",
                "1",
            ]
        )
        == 0
    )
    first = load_artifact(trained / "model").manifest
    again = load_artifact(trained / "again").manifest
    assert again["version"] == first["version"]
    assert again["files"]["tokenizer.json"] == first["files"]["tokenizer.json"]


def test_export_refuses_when_int8_loses_accuracy_after_every_plan(trained: Path) -> None:
    from models.tokenize import TextEncoder
    from models.training.checkpoint import load_checkpoint_examples
    from models.training.export import FP32_PLANS, export_artifact

    model, record, validation = load_checkpoint_examples(trained / "checkpoint")
    encoder = TextEncoder.from_file(trained / "checkpoint" / "tokenizer.json", 32)
    # a gate no model can pass (int8 would have to beat fp32 by 100 points): every plan is tried, each named
    with pytest.raises(ExportCheckError, match="int8 loses more than -1.0000 validation accuracy") as refused:
        export_artifact(
            model,
            encoder,
            trained / "checkpoint" / "tokenizer.json",
            trained / "refused",
            validation,
            record,
            max_int8_drop=-1.0,
        )
    # all int8, then each sensitive product alone in fp32, then the wider plans
    assert str(refused.value).count("fp32 products") > len(FP32_PLANS)
    assert "; 1 fp32 products:" in str(refused.value)


def test_exported_feedback_trains_with_more_weight_and_overrides_the_same_text(
    broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiokafka import AIOKafkaProducer

    topic = f"feedback-{tmp_path.name}"
    text = "Acme shares plunge 0% after profit warning"
    reviews = [
        {
            "id": "r1",
            "text": text,
            "model_topic": "Earnings",
            "model_sentiment": "negative",
            "topic": "Earnings",
            "sentiment": "neutral",
            "verdict": "corrected",
            "analyst": "dana",
        },
        {
            "id": "r2",
            "text": "Globex declares special dividend",
            "model_topic": "Dividend",
            "model_sentiment": "positive",
            "topic": "Dividend",
            "sentiment": "positive",
            "verdict": "confirmed",
        },
        {
            "id": "r1",
            "text": text,
            "model_topic": "Earnings",
            "model_sentiment": "negative",
            "topic": "Earnings",
            "sentiment": "positive",
            "verdict": "corrected",
            "analyst": "dana",
        },  # a later review of r1 wins
    ]

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        try:
            for review in reviews:
                await producer.send_and_wait(topic, json.dumps(review).encode(), key=review["id"].encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    monkeypatch.setenv("FINMON_KAFKA__BOOTSTRAP_SERVERS", broker)
    monkeypatch.setenv("FINMON_TOPICS__FEEDBACK", topic)
    exported = tmp_path / "feedback.jsonl"
    assert main(["feedback", "export", "--output", str(exported)]) == 0
    assert "exported 2 reviewed documents (1 corrected, 1 confirmed)" in capsys.readouterr().out
    rows = {r["id"]: r for r in map(json.loads, exported.read_text().splitlines())}
    assert rows["r1"]["sentiment"] == "positive" and rows["r1"]["text"] == text

    sentiment, topic_data = write_data(tmp_path)
    code = main(
        [
            "train",
            "--sentiment-data",
            str(sentiment),
            "--topic-data",
            str(topic_data),
            "--feedback-data",
            str(exported),
            "--feedback-weight",
            "4",
            "--output",
            str(tmp_path / "model"),
            "--max-steps",
            "2",
            *TINY_RUN,
            "--max-int8-drop",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    manifest = load_artifact(tmp_path / "model").manifest
    feedback = [d for d in manifest["datasets"] if d.get("kind") == "analyst feedback"]
    assert sorted((d["head"], d["rows"]) for d in feedback) == [("sentiment", 2), ("topic", 2)]
    assert manifest["hyperparameters"]["feedback_weight"] == 4
    # r1 repeats a sentiment example (with its link stripped it is the same text): merged, not added
    assert manifest["examples"]["after_dedup"] == manifest["examples"]["read"] - 1 - 2 - 1


def test_examples_from_feedback_override_original_labels() -> None:
    from models.dataset import Example, deduplicate

    merged = deduplicate(
        [
            Example("Acme shares plunge", sentiment="negative", topic="Earnings"),
            Example("ACME shares plunge!", sentiment="positive", weight=4.0),
        ]
    )
    assert len(merged) == 1 and merged[0].sentiment == "positive" and merged[0].topic == "Earnings"
    assert merged[0].weight == 4.0
