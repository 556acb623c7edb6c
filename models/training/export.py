"""ONNX export with proof: fp32 parity against PyTorch, int8 accuracy within a fraction of a point of
fp32 on each head of the report split (agreement reported beside it), fp16 agreement with fp32.

Two labeled splits come in. ``select`` makes the choices: which products stay in fp32. ``report`` is
read after that, once: the gate and the published figures. A plan chosen on the split that grades it
would report its own luck.

The int8 model is made for speed on CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI): the graph is
traced with plain (eager) attention so that ONNX Runtime's transformer optimizer fuses each layer's
attention into one op, skip connections into their layer norms and bias into GELU; then weights are
quantized per output channel and activations per tensor at run time (dynamic). Should that lose too
much accuracy, the one matrix product whose fp32 copy helps most is kept in fp32 (a search over the
layers' attention and output products), or failing that wider plans, until the gate holds; the
manifest names them. Accuracy is measured batch by batch as the runtime forms batches, since
dynamic quantization scales each batch's activations together.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from models.artifact import TOKENIZER, VARIANT_FILES, write_manifest
from models.dataset import Example
from models.errors import ExportCheckError
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.tokenize import TextEncoder
from models.training.network import TwoHeadClassifier

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-4
MAX_INT8_DROP = 0.003
MIN_FP16_AGREEMENT = 0.995
OPSET = 17
INT8_METHOD = (
    "ONNX Runtime transformer fusions (Attention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization), "
    "then dynamic int8: weights per output channel, activations per tensor at run time; heads fp32"
)
# The products tried one at a time in fp32 when the whole int8 model fails the gate.
SENSITIVE = (r"^Attention_\d+$", r"/attention/output/dense/", r"/layer\.\d+/output/dense/")
# Wider plans when no single product is enough, in this order: the feed-forward output products
# (their inputs, after GELU, carry the largest outliers), then the attention outputs too, then the
# embeddings as well.
FP32_PLANS: tuple[tuple[str, ...], ...] = (
    (),
    (r"/layer\.\d+/output/dense/",),
    (r"/layer\.\d+/output/dense/", r"/attention/output/dense/"),
    (r"/layer\.\d+/output/dense/", r"/attention/output/dense/", r"^EmbedLayerNormalization"),
)
INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("sentiment_logits", "topic_logits")


@dataclass(frozen=True)
class ExportChecks:
    """What the export proved, recorded in the manifest."""

    parity_max_abs_diff: float
    accuracy: dict[str, dict[str, float]]  # head -> {"fp32": ..., "int8": ...} on the report split
    select_accuracy: dict[str, dict[str, float]]  # the same on the select split, where the plan was chosen
    int8_agreement: dict[str, float]
    fp16_agreement: dict[str, float] | None
    fp32_nodes: list[str]
    max_int8_drop: float = MAX_INT8_DROP

    def as_dict(self) -> dict[str, Any]:
        return {
            "parity_atol": PARITY_ATOL,
            "parity_max_abs_diff": self.parity_max_abs_diff,
            "max_int8_accuracy_drop": self.max_int8_drop,
            "quantization": INT8_METHOD,
            "report_accuracy": self.accuracy,
            "select_accuracy": self.select_accuracy,
            "int8_agreement": self.int8_agreement,
            "int8_fp32_nodes": self.fp32_nodes,
            "fp16_agreement": self.fp16_agreement,
        }


@dataclass(frozen=True)
class Reference:
    """A labeled split and the fp32 model's logits on it: what every variant is checked against."""

    texts: list[str]
    truth: dict[str, list[int | None]]
    logits: list[np.ndarray]

    @classmethod
    def of(cls, examples: Sequence[Example], logits: list[np.ndarray]) -> Reference:
        truth = {
            head: [labels.index(label) if (label := getattr(e, head)) else None for e in examples]
            for head, labels in (("sentiment", SENTIMENT_LABELS), ("topic", TOPIC_LABELS))
        }
        return cls([e.text for e in examples], truth, logits)

    def accuracy(self, logits: list[np.ndarray]) -> dict[str, float]:
        """Accuracy of each head the split has labels for (a head it has none for is left out)."""
        result = {}
        for head, scores in zip(("sentiment", "topic"), logits, strict=True):
            pairs = [(t, int(p)) for t, p in zip(self.truth[head], scores.argmax(1), strict=True) if t is not None]
            if pairs:
                result[head] = sum(t == p for t, p in pairs) / len(pairs)
        return result

    def drop(self, logits: list[np.ndarray]) -> dict[str, float]:
        """Accuracy lost against fp32 on each head (negative: gained)."""
        base, other = self.accuracy(self.logits), self.accuracy(logits)
        return {head: base[head] - other[head] for head in base}


def _onnx_fp32(model: TwoHeadClassifier, encoder: TextEncoder, path: Path) -> None:
    """Trace with eager attention: the pattern ONNX Runtime's optimizer fuses (SDPA's is not)."""
    sample = encoder.encode(["finmon export sample", "a second, longer sample headline for the trace"])
    model.eval()
    encoder_module: Any = model.encoder
    encoder_module.set_attn_implementation("eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on transformers' mask code; parity is checked below
        _trace(model, sample, path)


def _trace(model: TwoHeadClassifier, sample: Any, path: Path) -> None:
    torch.onnx.export(
        model,
        (torch.from_numpy(sample.input_ids), torch.from_numpy(sample.attention_mask)),
        str(path),
        input_names=list(INPUTS),
        output_names=list(OUTPUTS),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "sentiment_logits": {0: "batch"},
            "topic_logits": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
    )


def _run(
    session: ort.InferenceSession, encoder: TextEncoder, texts: Sequence[str], batch: int = 64
) -> list[np.ndarray]:
    """Logits in input order, computed as the runtime computes them: texts sorted by length, then
    batched (int8 quantizes activations per batch, so batches must be the ones the runtime forms)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outs = [np.zeros((len(texts), n), dtype=np.float32) for n in (len(SENTIMENT_LABELS), len(TOPIC_LABELS))]
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        enc = encoder.encode([texts[i] for i in chunk])
        result = session.run(list(OUTPUTS), {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask})
        for i in range(2):
            outs[i][chunk] = np.asarray(result[i], dtype=np.float32)
    return outs


def _torch_run(
    model: TwoHeadClassifier, encoder: TextEncoder, texts: Sequence[str], batch: int = 64
) -> list[np.ndarray]:
    outs: list[list[np.ndarray]] = [[], []]
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            enc = encoder.encode(texts[start : start + batch])
            result = model(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask))
            for i in range(2):
                outs[i].append(result[i].numpy())
    return [np.concatenate(o) for o in outs]


def _agreement(reference: list[np.ndarray], other: list[np.ndarray]) -> dict[str, float]:
    return {
        head: float(np.mean(ref.argmax(1) == oth.argmax(1)))
        for head, ref, oth in zip(("sentiment", "topic"), reference, other, strict=True)
    }


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _NoPreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """The quantizer logs a hint about shape pre-processing on the root logger each call; our graphs are
    fused already, so it is noise."""
    hint = _NoPreprocessingHint()
    logging.getLogger().addFilter(hint)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(hint)


def _optimize(source: Path, target: Path, heads: int, hidden: int) -> None:
    """ONNX Runtime's transformer fusions for BERT-family encoders, saved for quantization."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
    fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    log.info("transformer fusions: %s", fused)
    optimized.save_model_to_file(str(target))


def _int8(source: Path, target: Path, fp32_nodes: Sequence[str] = ()) -> None:
    """Dynamic int8 of an optimized graph: per-channel weights, per-tensor activations at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_quantizer():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention", "EmbedLayerNormalization"],
            nodes_to_exclude=list(fp32_nodes),
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    onnx.checker.check_model(str(target))


def _planned_nodes(path: Path, plan: Sequence[str]) -> list[str]:
    names = [node.name for node in onnx.load(str(path), load_external_data=False).graph.node]
    return [name for name in names if any(re.search(pattern, name) for pattern in plan)]


def quantize_checked(
    optimized: Path, target: Path, encoder: TextEncoder, reference: Reference, max_drop: float
) -> tuple[list[np.ndarray], list[str]]:
    """An int8 model that loses at most ``max_drop`` accuracy on each head; its logits and the products
    it keeps in fp32. First every product in int8; then the single product whose fp32 copy helps most
    (sensitivity search over the attention, attention-output and feed-forward-output products); then
    the wider plans of ``FP32_PLANS``. Raises ExportCheckError when none passes."""
    tried: list[str] = []

    def attempt(nodes: list[str]) -> tuple[list[np.ndarray], dict[str, float]]:
        _int8(optimized, target, nodes)
        logits = _run(_session(target), encoder, reference.texts)
        drop = reference.drop(logits)
        log.info("int8 with %d fp32 products %s: accuracy drop %s", len(nodes), nodes[:3], drop)
        tried.append(f"{len(nodes)} fp32 products: " + ", ".join(f"{h} -{d:.4f}" for h, d in drop.items()))
        return logits, drop

    logits, drop = attempt([])
    if max(drop.values(), default=0.0) <= max_drop:
        return logits, []
    singles = _planned_nodes(optimized, SENSITIVE)
    best: tuple[float, list[str]] | None = None
    for node in singles:
        _, drop = attempt([node])
        if max(drop.values()) <= max_drop and (best is None or max(drop.values()) < best[0]):
            best = (max(drop.values()), [node])
    plans = [best[1]] if best else [_planned_nodes(optimized, plan) for plan in FP32_PLANS[1:]]
    for nodes in plans:
        logits, drop = attempt(nodes)
        if max(drop.values()) <= max_drop:
            return logits, nodes
    raise ExportCheckError(
        f"int8 loses more than {max_drop:.4f} select accuracy against fp32 on a head ({'; '.join(tried)})"
    )


def _fp16(source: Path, target: Path) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(target))


def _accuracy_table(reference: Reference, int8: list[np.ndarray]) -> dict[str, dict[str, float]]:
    fp32 = reference.accuracy(reference.logits)
    return {head: {"fp32": round(fp32[head], 4), "int8": round(v, 4)} for head, v in reference.accuracy(int8).items()}


def export_artifact(
    model: TwoHeadClassifier,
    encoder: TextEncoder,
    tokenizer_file: Path,
    output: Path,
    select: Sequence[Example],
    report: Sequence[Example],
    manifest: dict[str, Any],
    keep_fp32: bool = False,
    max_int8_drop: float = MAX_INT8_DROP,
) -> dict[str, Any]:
    """Export, check and write a complete model folder; raise ExportCheckError if a check fails.

    The int8 plan is searched on ``select``; the gate (int8 within ``max_int8_drop`` of fp32 on each
    head) is then checked on ``report``, and a plan that fails there is not searched again."""
    if not select or not report:
        raise ExportCheckError("export needs the select and report splits for its parity and accuracy checks")
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / VARIANT_FILES["fp32"]
        _onnx_fp32(model.float().cpu(), encoder, fp32)
        onnx.checker.check_model(str(fp32))
        session = _session(fp32)
        texts = [e.text for e in select]
        torch_out = _torch_run(model, encoder, texts)
        chosen_on = Reference.of(select, _run(session, encoder, texts))
        diff = float(max(np.abs(r - o).max() for r, o in zip(torch_out, chosen_on.logits, strict=True)))
        if diff > PARITY_ATOL:
            raise ExportCheckError(f"ONNX fp32 differs from PyTorch by {diff:.2e} (tolerance {PARITY_ATOL:.0e})")
        optimized = Path(tmp) / "optimized.onnx"
        config: Any = model.encoder.config
        _optimize(fp32, optimized, int(config.num_attention_heads), int(config.hidden_size))
        int8_path = output / VARIANT_FILES["int8"]
        select_int8, fp32_nodes = quantize_checked(optimized, int8_path, encoder, chosen_on, max_int8_drop)
        graded = Reference.of(report, _run(session, encoder, [e.text for e in report]))
        report_int8 = _run(_session(int8_path), encoder, graded.texts)
        drop = graded.drop(report_int8)
        if max(drop.values(), default=0.0) > max_int8_drop:
            lost = ", ".join(f"{head} -{value:.4f}" for head, value in drop.items())
            raise ExportCheckError(
                f"int8 (planned on select) loses more than {max_int8_drop:.4f} report accuracy against fp32 ({lost})"
            )
        fp16 = output / VARIANT_FILES["fp16"]
        _fp16(fp32, fp16)
        fp16_agreement = _agreement(graded.logits, _run(_session(fp16), encoder, graded.texts))
        if min(fp16_agreement.values()) < MIN_FP16_AGREEMENT:
            raise ExportCheckError(f"fp16 agrees with fp32 on only {fp16_agreement} of report labels")
        if keep_fp32:
            shutil.copyfile(fp32, output / VARIANT_FILES["fp32"])
        checks = ExportChecks(
            diff,
            _accuracy_table(graded, report_int8),
            _accuracy_table(chosen_on, select_int8),
            _agreement(graded.logits, report_int8),
            fp16_agreement,
            fp32_nodes,
            max_int8_drop,
        )
    shutil.copyfile(tokenizer_file, output / TOKENIZER)
    log.info("export checks passed: %s", checks.as_dict())
    return write_manifest(output, {**manifest, "export": checks.as_dict(), "opset": OPSET})
