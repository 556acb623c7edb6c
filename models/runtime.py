"""Inference with ONNX Runtime: provider choice, batching, probabilities; never imports torch."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models.artifact import TOKENIZER, Artifact, load_artifact
from models.errors import ArtifactError, InvalidTextError
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.settings import ModelSettings
from models.tokenize import Batch, TextEncoder

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
TOP_TOPICS = 3


@dataclass(frozen=True)
class Prediction:
    """Both heads' answer for one document."""

    topic: str
    topic_scores: dict[str, float]
    sentiment: str
    sentiment_scores: dict[str, float]
    score: float
    model_version: str
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "topic_scores": self.topic_scores,
            "sentiment": self.sentiment,
            "sentiment_scores": self.sentiment_scores,
            "score": self.score,
            "model_version": self.model_version,
        }


@dataclass
class Timings:
    """Where the time of one ``predict`` call went, for the caller's metrics."""

    tokenize_seconds: float = 0.0
    inference_seconds: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    truncated: int = 0


@dataclass(frozen=True)
class ProviderChoice:
    """What to ask ONNX Runtime for, given the wish and what this build offers."""

    providers: tuple[str, ...]
    precision: str


def choose_provider(device: str, available: Sequence[str], variants: Sequence[str]) -> ProviderChoice:
    """CUDA with fp16 when asked (or ``auto``) and offered; otherwise CPU with int8."""
    if device not in DEVICES:
        raise ArtifactError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    cpu_precision = "int8" if "int8" in variants else "fp32" if "fp32" in variants else "fp16"
    if device != "cpu" and CUDA in available:
        gpu_precision = "fp16" if "fp16" in variants else cpu_precision
        return ProviderChoice((CUDA, CPU), gpu_precision)
    return ProviderChoice((CPU,), cpu_precision)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def check_texts(texts: Sequence[object]) -> list[str]:
    """Every text must be a non-empty string; the first offender raises InvalidTextError."""
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidTextError(index, "wrong_type", f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidTextError(index, "empty_text", "text is empty")
    return list(texts)  # type: ignore[arg-type]


class Classifier:
    """A loaded model folder, ready to score batches of texts."""

    def __init__(
        self,
        artifact: Artifact,
        session: ort.InferenceSession,
        precision: str,
        requested: str,
        batch_size: int = 64,
        io_binding: bool | None = None,
    ) -> None:
        self.artifact = artifact
        self.session = session
        self.precision = precision
        self.requested_device = requested
        self.batch_size = batch_size
        self.encoder = TextEncoder.from_file(artifact.folder / TOKENIZER, artifact.max_length, artifact.head_fraction)
        self.provider = session.get_providers()[0]
        self.io_binding = self.provider == CUDA if io_binding is None else io_binding
        self._tokenizer_thread: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: ModelSettings, **changes: Any) -> Classifier:
        """The classifier the model settings describe; ``changes`` that are not None replace some of
        them (a command's ``--model`` or ``--device``)."""
        chosen = settings.model_copy(update={k: v for k, v in changes.items() if v is not None})
        return cls.load(
            chosen.path,
            device=chosen.device,
            threads=chosen.threads,
            spin=chosen.spin,
            batch_size=chosen.batch_size,
            verify_checksums=chosen.verify_checksums,
        )

    @classmethod
    def load(
        cls,
        folder: Path | str,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 64,
        verify_checksums: bool = True,
        precision: str | None = None,
        io_binding: bool | None = None,
        spin: bool = True,
    ) -> Classifier:
        """Load and verify ``folder``; warn loudly when CUDA was asked for and CPU is what runs.

        ``precision`` forces a variant (fp16 on the CPU, say, to check the GPU's variant anywhere);
        ``io_binding`` defaults to on with CUDA, off otherwise.
        """
        artifact = load_artifact(Path(folder), verify_checksums=verify_checksums)
        if device in ("auto", "cuda") and hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except Exception as exc:  # pragma: no cover - depends on installed CUDA libraries
                log.debug("onnxruntime.preload_dlls failed: %s", exc)
        choice = choose_provider(device, ort.get_available_providers(), list(artifact.variants))
        if precision is not None:
            choice = ProviderChoice(choice.providers, precision)
        session = cls._session(artifact, choice, threads, spin)
        if choice.providers[0] == CUDA and session.get_providers()[0] != CUDA:
            fallback = choose_provider("cpu", [], list(artifact.variants))
            choice = ProviderChoice(fallback.providers, precision or fallback.precision)
            session = cls._session(artifact, choice, threads, spin)
        classifier = cls(artifact, session, choice.precision, device, batch_size, io_binding)
        if device == "cuda" and classifier.provider != CUDA:
            log.warning(
                "CUDA was requested but ONNX Runtime runs model %s on %s (%s); "
                "install the [gpu] extra and check the CUDA libraries",
                artifact.version,
                classifier.provider,
                classifier.precision,
            )
        return classifier

    @staticmethod
    def _session(
        artifact: Artifact, choice: ProviderChoice, threads: int | None, spin: bool = True
    ) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        if not spin:  # idle threads sleep instead of spinning: the process's other threads get the cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = artifact.variant_path(choice.precision)
        try:
            return ort.InferenceSession(str(path), options, providers=list(choice.providers))
        except Exception as exc:  # onnxruntime raises its own exception hierarchy
            raise ArtifactError(f"ONNX Runtime cannot load {path}: {exc}") from exc

    @property
    def version(self) -> str:
        return self.artifact.version

    def describe(self) -> dict[str, str]:
        return {
            "version": self.version,
            "provider": self.provider,
            "precision": self.precision,
            "requested_device": self.requested_device,
        }

    def predict(
        self, texts: Sequence[object], timings: Timings | None = None, langs: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """One prediction per text, in input order; raises InvalidTextError on a bad text. This one
        model reads every text whatever its language (``langs``: see ``models.routing.Router``).

        Texts are sorted by length so each batch pads little, and the next batch is tokenized
        on a helper thread while ONNX Runtime (which releases the GIL) runs the current one.
        """
        valid = check_texts(texts)
        timings = timings if timings is not None else Timings()
        order = sorted(range(len(valid)), key=lambda i: len(valid[i]))
        chunks = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        results: list[Prediction | None] = [None] * len(valid)
        pending = self._encode_async([valid[i] for i in chunks[0]]) if chunks else None
        for number, chunk in enumerate(chunks):
            assert pending is not None
            batch, seconds = pending.result()
            timings.tokenize_seconds += seconds
            if number + 1 < len(chunks):
                pending = self._encode_async([valid[i] for i in chunks[number + 1]])
            for i, prediction in zip(chunk, self._predict_batch(batch, timings), strict=True):
                results[i] = prediction
        return [r for r in results if r is not None]

    def _encode_async(self, texts: list[str]) -> Future[tuple[Batch, float]]:
        if self._tokenizer_thread is None:
            self._tokenizer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finmon-tokenize")
        return self._tokenizer_thread.submit(self._encode, texts)

    def _encode(self, texts: list[str]) -> tuple[Batch, float]:
        began = time.perf_counter()
        return self.encoder.encode(texts), time.perf_counter() - began

    def _predict_batch(self, batch: Batch, timings: Timings) -> list[Prediction]:
        timings.truncated += batch.truncated
        began = time.perf_counter()
        sentiment_logits, topic_logits = self._infer(batch.input_ids, batch.attention_mask)
        timings.inference_seconds.append(time.perf_counter() - began)
        rows = len(batch.truncated_rows)
        timings.batch_sizes.append(rows)
        sentiment, topic = softmax(sentiment_logits), softmax(topic_logits)
        return [self._prediction(sentiment[row], topic[row], batch.truncated_rows[row]) for row in range(rows)]

    def _infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.io_binding:
            binding = self.session.io_binding()
            binding.bind_cpu_input("input_ids", input_ids)
            binding.bind_cpu_input("attention_mask", attention_mask)
            binding.bind_output("sentiment_logits")
            binding.bind_output("topic_logits")
            self.session.run_with_iobinding(binding)
            out = binding.copy_outputs_to_cpu()
        else:
            out = self.session.run(
                ["sentiment_logits", "topic_logits"], {"input_ids": input_ids, "attention_mask": attention_mask}
            )
        return np.asarray(out[0], dtype=np.float32), np.asarray(out[1], dtype=np.float32)

    def _prediction(self, sentiment: np.ndarray, topic: np.ndarray, truncated: bool) -> Prediction:
        top = np.argsort(-topic)[:TOP_TOPICS]
        sentiment_scores = {label: round(float(p), 6) for label, p in zip(SENTIMENT_LABELS, sentiment, strict=True)}
        return Prediction(
            topic=TOPIC_LABELS[int(top[0])],
            topic_scores={TOPIC_LABELS[int(i)]: round(float(topic[i]), 6) for i in top},
            sentiment=SENTIMENT_LABELS[int(sentiment.argmax())],
            sentiment_scores=sentiment_scores,
            score=round(float(sentiment[2] - sentiment[0]), 6),
            model_version=self.version,
            truncated=truncated,
        )
