import logging
from pathlib import Path

import numpy as np
import pytest

from models.errors import ArtifactError, InvalidTextError
from models.runtime import CPU, CUDA, Classifier, Timings, choose_provider


@pytest.fixture(scope="module")
def classifier(tiny_model: Path) -> Classifier:
    return Classifier.load(tiny_model, device="cpu", batch_size=2)


def test_predictions_follow_the_words_and_keep_input_order(classifier: Classifier) -> None:
    texts = ["good dividend", "bad oil", "flat w1 w2", "good ipo w3", "bad fed"]
    predictions = classifier.predict(texts)
    assert [p.sentiment for p in predictions] == ["positive", "negative", "neutral", "positive", "negative"]
    assert [p.topic for p in predictions] == [
        "Dividend",
        "Energy / Oil",
        "General News / Opinion",
        "IPO",
        "Fed / Central Banks",
    ]
    assert all(p.model_version == "tiny-1" for p in predictions)


def test_probabilities_and_signed_score(classifier: Classifier) -> None:
    [p] = classifier.predict(["good w1"])
    assert sum(p.sentiment_scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert p.score == pytest.approx(p.sentiment_scores["positive"] - p.sentiment_scores["negative"], abs=1e-5)
    assert -1.0 <= p.score <= 1.0
    assert len(p.topic_scores) == 3
    assert list(p.topic_scores.values()) == sorted(p.topic_scores.values(), reverse=True)


def test_timings_report_batches_and_truncation(classifier: Classifier) -> None:
    timings = Timings()
    classifier.predict(["good", "bad", "flat", " ".join(["w5"] * 40)], timings)
    assert timings.batch_sizes == [2, 2]
    assert timings.truncated == 1
    assert len(timings.inference_seconds) == 2


@pytest.mark.parametrize(
    ("texts", "reason", "index"),
    [
        (["good", ""], "empty_text", 1),
        (["   "], "empty_text", 0),
        (["good", 42], "wrong_type", 1),
        ([None], "wrong_type", 0),
    ],
)
def test_bad_input_is_a_clear_error(classifier: Classifier, texts: list[object], reason: str, index: int) -> None:
    with pytest.raises(InvalidTextError) as caught:
        classifier.predict(texts)
    assert caught.value.reason == reason
    assert caught.value.index == index


def test_provider_choice() -> None:
    assert choose_provider("cpu", [CUDA, CPU], ["int8", "fp16"]).providers == (CPU,)
    gpu = choose_provider("auto", [CUDA, CPU], ["int8", "fp16"])
    assert gpu.providers == (CUDA, CPU) and gpu.precision == "fp16"
    fallback = choose_provider("cuda", [CPU], ["int8", "fp16"])
    assert fallback.providers == (CPU,) and fallback.precision == "int8"
    with pytest.raises(ArtifactError, match="unknown device"):
        choose_provider("tpu", [CPU], ["int8"])


def test_asking_for_cuda_on_a_cpu_build_runs_on_cpu_and_says_so(
    tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # This machine's onnxruntime is the CPU build: CUDA is asked for and cannot be given.
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        classifier = Classifier.load(tiny_model, device="cuda")
    assert classifier.provider == CPU
    assert classifier.precision == "int8"
    assert classifier.describe()["requested_device"] == "cuda"
    assert "CUDA was requested but ONNX Runtime runs model tiny-1 on CPUExecutionProvider" in caplog.text
    assert classifier.predict(["good"])[0].sentiment == "positive"


def test_dynamic_padding_reaches_the_session(classifier: Classifier) -> None:
    batch = classifier.encoder.encode(["good", "bad w1 w2"])
    logits = classifier._infer(batch.input_ids, batch.attention_mask)
    assert batch.input_ids.shape == (2, 5)
    assert np.asarray(logits[0]).shape == (2, 3)


def test_only_documents_that_were_cut_are_flagged_truncated(tiny_model: Path) -> None:
    classifier = Classifier.load(tiny_model, device="cpu")  # max_length 16: 14 words fit exactly
    exact, cut = classifier.predict([" ".join(["w1"] * 14), " ".join(["w1"] * 15)])
    assert (exact.truncated, cut.truncated) == (False, True)


def test_the_gpu_path_runs_on_the_cpu_with_the_same_answers(tiny_model: Path) -> None:
    """fp16 variant and IO binding, as on CUDA, but on the CPU provider: checks the code path anywhere."""
    texts = ["good oil w1", "bad fed", "flat ipo w2 w3 w4", "dividend good good"] * 20
    default = Classifier.load(tiny_model, device="cpu", batch_size=16)
    gpu_like = Classifier.load(tiny_model, device="cpu", precision="fp16", io_binding=True, batch_size=16)
    assert (gpu_like.precision, gpu_like.io_binding, default.io_binding) == ("fp16", True, False)
    assert [p.as_dict() for p in gpu_like.predict(texts)] == [p.as_dict() for p in default.predict(texts)]


def test_a_missing_variant_is_a_clear_error(tiny_model: Path) -> None:
    with pytest.raises(ArtifactError, match="has no fp32 variant"):
        Classifier.load(tiny_model, device="cpu", precision="fp32")
