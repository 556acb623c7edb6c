import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from models.runtime import Classifier
from streams.core.companies import Linker
from streams.core.decode import Limits
from streams.core.records import NewsDocument
from streams.core.scoring import Message, message_time, score_batch

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def doc(published: datetime) -> NewsDocument:
    return NewsDocument("a", published, "test", "title", "")


def test_a_scored_record_is_stamped_with_its_published_time_when_a_broker_would_keep_it() -> None:
    now = NOW.timestamp()
    recent = NOW - timedelta(hours=3)
    assert message_time(doc(recent), now) == recent.timestamp()
    assert message_time(doc(NOW + timedelta(minutes=4)), now) == (NOW + timedelta(minutes=4)).timestamp()


def test_far_future_and_far_past_times_are_stamped_with_the_scoring_time() -> None:
    now = NOW.timestamp()
    assert message_time(doc(datetime(2999, 12, 31, tzinfo=UTC)), now) == now  # a broker refuses it
    assert message_time(doc(datetime(1970, 1, 1, tzinfo=UTC)), now) == now  # retention would delete it


class Flaky:
    """A classifier that fails, as ONNX Runtime can, on any batch holding one poisoned text."""

    def __init__(self, model: Classifier, poisoned: str) -> None:
        self.model, self.poisoned, self.calls = model, poisoned, 0

    def predict(self, texts: Any, timings: Any = None, langs: Any = None) -> list[Any]:
        self.calls += 1
        if any(self.poisoned in t for t in texts):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")
        return self.model.predict(texts, timings, langs)


def message(i: int, title: str, partition: int = 0) -> Message:
    doc = {"id": f"d{i}", "published_at": "2026-11-24T09:00:00Z", "title": title}
    return Message(json.dumps(doc).encode(), f"d{i}".encode(), "news", partition, i)


def test_an_inference_error_of_any_kind_dead_letters_only_the_document_that_causes_it(tiny_model: Path) -> None:
    flaky = Flaky(Classifier.load(tiny_model), poisoned="oil")
    messages = [message(i, "good fed" if i != 11 else "bad oil") for i in range(32)]
    result = score_batch(messages, flaky, Limits(), linker=Linker([]))  # type: ignore[arg-type]
    assert [letter.offset for letter in result.dead] == [11]
    assert result.dead[0].reason == "inference_error" and "ONNXRuntimeError" in result.dead[0].detail
    assert len(result.scored) == 31
    assert flaky.calls <= 2 * 5 + 1, "the batch is split in halves, not tried one by one"


def test_a_scored_record_too_large_to_send_is_dead_lettered_by_reference_alone(tiny_model: Path) -> None:
    big = {"id": "big", "published_at": "2026-11-24T09:00:00Z", "title": "good", "notes": "x" * 1_200_000}
    messages = [Message(json.dumps(big).encode(), b"big", "news", 0, 7), message(8, "good fed")]
    result = score_batch(messages, Classifier.load(tiny_model), Limits(max_message_bytes=4_000_000), linker=Linker([]))
    scored, dead = result.encoded()
    assert [doc.id for doc, _, _ in scored] == ["d8"]
    ((letter, value),) = dead
    written = json.loads(value)
    assert letter.reason == "too_large" and written["original_omitted"] and written["source_offset"] == 7
    assert len(value) < 4096
