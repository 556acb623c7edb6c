from pathlib import Path

import pytest

from models.tokenize import TextEncoder


@pytest.fixture
def encoder(tiny_model: Path) -> TextEncoder:
    return TextEncoder.from_file(tiny_model / "tokenizer.json", max_length=8)


def test_padding_is_to_the_longest_document_of_the_batch(encoder: TextEncoder) -> None:
    batch = encoder.encode(["good", "bad oil w1"])
    assert batch.shape == (2, 5)  # [CLS] bad oil w1 [SEP]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch.input_ids[0, 3:].tolist() == [encoder.pad_id, encoder.pad_id]
    assert batch.truncated == 0


def test_long_text_keeps_head_and_tail(encoder: TextEncoder) -> None:
    words = " ".join(f"w{i}" for i in range(20))
    ids, cut = encoder.ids(words)
    assert cut
    assert len(ids) == 8
    vocab = encoder._tokenizer.get_vocab()
    kept = [encoder._tokenizer.id_to_token(i) for i in ids]
    assert kept == ["[CLS]", "w0", "w1", "w2", "w17", "w18", "w19", "[SEP]"]
    assert vocab["[CLS]"] == encoder.cls_id


def test_batch_counts_truncated_documents(encoder: TextEncoder) -> None:
    batch = encoder.encode(["good", " ".join(["w1"] * 30), " ".join(["w2"] * 6)])
    assert batch.truncated == 1
    assert batch.shape == (3, 8)


def test_head_fraction_one_keeps_only_the_head(tiny_model: Path) -> None:
    enc = TextEncoder.from_file(tiny_model / "tokenizer.json", max_length=5, head_fraction=1.0)
    ids, _ = enc.ids("w1 w2 w3 w4 w5")
    assert [enc._tokenizer.id_to_token(i) for i in ids] == ["[CLS]", "w1", "w2", "w3", "[SEP]"]


@pytest.mark.parametrize("folder", ["default", "multilingual"])
def test_a_long_text_is_cut_before_tokenizing_and_keeps_the_same_ids(folder: str) -> None:
    """The shipped tokenizers read only the head and tail of a long text, and give the ids of the whole."""
    import random

    from models.settings import DEFAULT_MODEL_DIR

    encoder = TextEncoder.from_file(DEFAULT_MODEL_DIR.parent / folder / "tokenizer.json", max_length=128)
    rng = random.Random(3)
    words = ["Tesla", "shares", "tumble", "after", "guidance", "cut;", "Fed", "holds", "rates", "$AAPL", "12.5%"]
    words += ["贵州茅台一季度净利润同比下滑", "Q3"]
    for length in (300, 3_000, 100_000):
        text = " ".join(rng.choice(words) for _ in range(length // 6))
        whole = encoder._frame(encoder._tokenizer.encode(text, add_special_tokens=False).ids)
        assert encoder.ids(text) == whole
        assert len(encoder.clip(text)) <= 128 * 16 + 64


def test_training_and_serving_read_the_same_text_whatever_entities_it_carries(tiny_model: Path) -> None:
    """The data sets carry HTML entities (``&amp;``, ``&lt;``, ``&gt;``, ``&quot;``, ``&#39;``); the
    model reads the same text with them or without, in training (TextEncoder) and in serving (Classifier)."""
    from models.runtime import Classifier

    pairs = [
        ("good S&amp;P dividend &amp; oil", "good S&P dividend & oil"),
        ("bad fed &lt;warns&gt; &quot;ipo&quot; it&#39;s", 'bad fed <warns> "ipo" it\'s'),
        ("flat  oil\n\tw1", "flat oil w1"),
    ]
    encoder = TextEncoder.from_file(tiny_model / "tokenizer.json", max_length=16)
    classifier = Classifier.load(tiny_model)
    for escaped, plain in pairs:
        assert encoder.ids(escaped) == encoder.ids(plain)
        assert classifier.predict([escaped]) == classifier.predict([plain])
