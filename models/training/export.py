"""ONNX export with proof: fp32 parity against PyTorch, int8 and fp16 agreement with fp32."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from models.artifact import TOKENIZER, VARIANT_FILES, write_manifest
from models.errors import ExportCheckError
from models.tokenize import TextEncoder
from models.training.network import TwoHeadClassifier

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-4
MIN_INT8_AGREEMENT = 0.995
MIN_FP16_AGREEMENT = 0.995
OPSET = 17
INT8_BLOCK = 32
INT8_METHOD = (
    f"int8 weights in blocks of {INT8_BLOCK} (MatMulNBits, symmetric) with int8 compute: activations are "
    "quantized dynamically per block at run time (accuracy level 4); embedding tables fp16; heads fp32"
)
INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("sentiment_logits", "topic_logits")


@dataclass(frozen=True)
class ExportChecks:
    """What the export proved, recorded in the manifest."""

    parity_max_abs_diff: float
    int8_agreement: dict[str, float]
    fp16_agreement: dict[str, float] | None

    min_int8_agreement: float = MIN_INT8_AGREEMENT

    def as_dict(self) -> dict[str, Any]:
        return {
            "parity_atol": PARITY_ATOL,
            "parity_max_abs_diff": self.parity_max_abs_diff,
            "min_int8_agreement": self.min_int8_agreement,
            "quantization": INT8_METHOD,
            "int8_agreement": self.int8_agreement,
            "fp16_agreement": self.fp16_agreement,
        }


def _onnx_fp32(model: TwoHeadClassifier, encoder: TextEncoder, path: Path) -> None:
    sample = encoder.encode(["finmon export sample", "a second, longer sample headline for the trace"])
    model.eval()
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
    outs: list[list[np.ndarray]] = [[], []]
    for start in range(0, len(texts), batch):
        enc = encoder.encode(texts[start : start + batch])
        result = session.run(list(OUTPUTS), {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask})
        for i in range(2):
            outs[i].append(np.asarray(result[i], dtype=np.float32))
    return [np.concatenate(o) for o in outs]


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


def _int8(source: Path, target: Path) -> None:
    """Block-wise dynamic int8: per-tensor activation scales lose too many labels on BERT-like encoders."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)), bits=8, block_size=INT8_BLOCK, is_symmetric=True, accuracy_level=4
    )
    quantizer.process()
    model = _fp16_embeddings(quantizer.model.model)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def _fp16_embeddings(model: onnx.ModelProto, min_elements: int = 1_000_000) -> onnx.ModelProto:
    """Store large embedding tables in fp16 and cast each looked-up row back to fp32."""
    initializers = {init.name: init for init in model.graph.initializer}
    casts = []
    for node in model.graph.node:
        table = initializers.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or table.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(table)
        if values.size < min_elements:
            continue
        table.CopyFrom(numpy_helper.from_array(values.astype(np.float16), table.name))
        output = node.output[0]
        node.output[0] = f"{output}_fp16"
        casts.append(
            (
                node,
                helper.make_node("Cast", [node.output[0]], [output], to=TensorProto.FLOAT, name=f"{node.name}_to_fp32"),
            )
        )
    for node, cast in casts:
        model.graph.node.insert(list(model.graph.node).index(node) + 1, cast)
    return model


def _fp16(source: Path, target: Path) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(target))


def export_artifact(
    model: TwoHeadClassifier,
    encoder: TextEncoder,
    tokenizer_file: Path,
    output: Path,
    check_texts: Sequence[str],
    manifest: dict[str, Any],
    keep_fp32: bool = False,
    min_int8_agreement: float = MIN_INT8_AGREEMENT,
) -> dict[str, Any]:
    """Export, check and write a complete model folder; raise ExportCheckError if a check fails."""
    if not check_texts:
        raise ExportCheckError("export needs validation texts for its parity and agreement checks")
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / VARIANT_FILES["fp32"]
        _onnx_fp32(model.float().cpu(), encoder, fp32)
        onnx.checker.check_model(str(fp32))
        reference = _torch_run(model, encoder, check_texts)
        fp32_out = _run(_session(fp32), encoder, check_texts)
        diff = float(max(np.abs(r - o).max() for r, o in zip(reference, fp32_out, strict=True)))
        if diff > PARITY_ATOL:
            raise ExportCheckError(f"ONNX fp32 differs from PyTorch by {diff:.2e} (tolerance {PARITY_ATOL:.0e})")
        int8 = output / VARIANT_FILES["int8"]
        _int8(fp32, int8)
        int8_agreement = _agreement(fp32_out, _run(_session(int8), encoder, check_texts))
        worst = min(int8_agreement.values())
        if worst < min_int8_agreement:
            raise ExportCheckError(
                f"int8 agrees with fp32 on only {worst:.4f} of validation labels (needs {min_int8_agreement})"
            )
        fp16 = output / VARIANT_FILES["fp16"]
        _fp16(fp32, fp16)
        fp16_agreement = _agreement(fp32_out, _run(_session(fp16), encoder, check_texts))
        if min(fp16_agreement.values()) < MIN_FP16_AGREEMENT:
            raise ExportCheckError(f"fp16 agrees with fp32 on only {fp16_agreement} of validation labels")
        if keep_fp32:
            shutil.copyfile(fp32, output / VARIANT_FILES["fp32"])
    shutil.copyfile(tokenizer_file, output / TOKENIZER)
    checks = ExportChecks(diff, int8_agreement, fp16_agreement, min_int8_agreement)
    log.info("export checks passed: %s", checks.as_dict())
    return write_manifest(output, {**manifest, "export": checks.as_dict(), "opset": OPSET})
