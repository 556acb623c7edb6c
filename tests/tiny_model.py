"""A tiny but real model folder for fast tests: word-level tokenizer, a hand-built ONNX graph.

Each known word pushes one label: ``good`` positive, ``bad`` negative, ``dividend`` the
Dividend topic, and so on, so tests can state the expected answer. Built with the onnx
helper API, no torch needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from models.artifact import VARIANT_FILES, write_manifest
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
SENTIMENT_WORDS = {"bad": "negative", "flat": "neutral", "good": "positive"}
TOPIC_WORDS = {"dividend": "Dividend", "oil": "Energy / Oil", "ipo": "IPO", "fed": "Fed / Central Banks"}
FILLER = [f"w{i}" for i in range(40)]


def vocabulary() -> dict[str, int]:
    words = SPECIAL + list(SENTIMENT_WORDS) + list(TOPIC_WORDS) + FILLER
    return {word: i for i, word in enumerate(words)}


def build_tokenizer(path: Path) -> None:
    tokenizer = Tokenizer(models.WordLevel(vocabulary(), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))


def build_onnx(path: Path, sentiment_words: dict[str, str] | None = None) -> None:
    vocab = vocabulary()
    dim = len(SENTIMENT_LABELS) + len(TOPIC_LABELS)
    embedding = np.zeros((len(vocab), dim), dtype=np.float32)
    embedding[:, 1] = 0.5  # every token leans neutral a little
    embedding[:, len(SENTIMENT_LABELS) + TOPIC_LABELS.index("General News / Opinion")] = 0.5
    for word, label in (sentiment_words or SENTIMENT_WORDS).items():
        embedding[vocab[word], SENTIMENT_LABELS.index(label)] = 20.0
    for word, label in TOPIC_WORDS.items():
        embedding[vocab[word], len(SENTIMENT_LABELS) + TOPIC_LABELS.index(label)] = 20.0
    head_s = np.eye(dim, len(SENTIMENT_LABELS), dtype=np.float32)
    head_t = np.eye(dim, len(TOPIC_LABELS), k=-len(SENTIMENT_LABELS), dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Div", ["summed", "count"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "head_s"], ["sentiment_logits"]),
        helper.make_node("MatMul", ["pooled", "head_t"], ["topic_logits"]),
    ]
    inits = [
        numpy_helper.from_array(embedding, "embedding"),
        numpy_helper.from_array(head_s, "head_s"),
        numpy_helper.from_array(head_t, "head_t"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-finmon",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [
            helper.make_tensor_value_info("sentiment_logits", TensorProto.FLOAT, ["batch", len(SENTIMENT_LABELS)]),
            helper.make_tensor_value_info("topic_logits", TensorProto.FLOAT, ["batch", len(TOPIC_LABELS)]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_tiny_model(
    folder: Path, max_length: int = 16, version: str = "tiny-1", sentiment_words: dict[str, str] | None = None
) -> Path:
    """Write a complete, verifiable model folder (int8 and fp16 names hold the same fp32 graph).

    ``sentiment_words`` changes which word pushes which sentiment: a second model version
    that disagrees with the first in a known way.
    """
    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(folder / "tokenizer.json")
    build_onnx(folder / VARIANT_FILES["int8"], sentiment_words)
    (folder / VARIANT_FILES["fp16"]).write_bytes((folder / VARIANT_FILES["int8"]).read_bytes())
    write_manifest(
        folder,
        {"version": version, "max_length": max_length, "truncation": {"strategy": "head+tail", "head_fraction": 0.5}},
    )
    return folder


def build_slow_model(folder: Path, matmuls: int = 12, size: int = 2048) -> Path:
    """The tiny model with a chain of large matrix products added to every call: a slow model that is
    still a real ONNX graph (same answers), to hold inference for seconds without touching finmon."""
    build_tiny_model(folder, version="tiny-slow")
    path = folder / VARIANT_FILES["int8"]
    model = onnx.load(str(path))
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.eye(size, dtype=np.float32), "slow_weight"))
    graph.initializer.append(numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "slow_zero"))
    graph.node.extend(
        [
            helper.make_node("ReduceSum", ["mask_f"], ["slow_sum"], keepdims=0),
            helper.make_node("Mul", ["slow_weight", "slow_sum"], ["slow_0"]),
        ]
    )
    for step in range(matmuls):
        graph.node.append(helper.make_node("MatMul", [f"slow_{step}", "slow_weight"], [f"slow_{step + 1}"]))
    graph.node.extend(
        [
            helper.make_node("ReduceSum", [f"slow_{matmuls}"], ["slow_total"], keepdims=0),
            helper.make_node("Mul", ["slow_total", "slow_zero"], ["slow_nothing"]),
        ]
    )
    for node in graph.node:
        if list(node.output) == ["sentiment_logits"]:
            node.output[0] = "sentiment_fast"
    graph.node.append(helper.make_node("Add", ["sentiment_fast", "slow_nothing"], ["sentiment_logits"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    (folder / VARIANT_FILES["fp16"]).write_bytes(path.read_bytes())
    write_manifest(
        folder,
        {"version": "tiny-slow", "max_length": 16, "truncation": {"strategy": "head+tail", "head_fraction": 0.5}},
    )
    return folder
