from collections import Counter
from pathlib import Path

import pytest

from models.dataset import (
    Example,
    dedup_key,
    deduplicate,
    read_examples,
    strata,
    stratified_split,
    three_way_split,
)
from models.errors import DataError


def test_reposts_differing_by_link_case_and_entities_share_a_key() -> None:
    a = "Fed hikes rates &amp; signals more https://t.co/abc123"
    b = "FED hikes rates & signals more   https://t.co/zzz999"
    assert dedup_key(a) == dedup_key(b)
    assert dedup_key(a) != dedup_key("Fed cuts rates & signals more")


def test_a_chinese_title_keeps_its_words_in_the_key() -> None:
    """A key made of ASCII letters only would reduce every Chinese title to its digits: all reposts."""
    a = "贵州茅台股价大跌5%，市场担忧需求放缓 https://t.co/x"
    assert dedup_key(a) == dedup_key("贵州茅台股价大跌5%，市场担忧需求放缓!") == "贵州茅台股价大跌5 市场担忧需求放缓"
    assert dedup_key(a) != dedup_key("腾讯控股股价大涨5%")


def test_csv_with_quoted_line_breaks_and_integer_labels(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('text,label\n"Profit warning\nat Acme",0\nShares soar &amp; rally,1\n', encoding="utf-8")
    examples = read_examples(path, "sentiment")
    assert [(e.text, e.sentiment) for e in examples] == [  # as written: the tokenizer normalizes them
        ("Profit warning\nat Acme", "negative"),
        ("Shares soar &amp; rally", "positive"),
    ]


def test_jsonl_with_title_and_body_and_named_labels(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"title": "Acme", "body": "raises dividend", "topic": "Dividend"}\n\n', encoding="utf-8")
    [example] = read_examples(path, "topic")
    assert example.text == "Acme raises dividend"
    assert example.topic == "Dividend"
    assert example.sentiment is None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "text,label\nhello,7\n", "bad.csv:2: sentiment label 7"),
        ("bad.jsonl", "{not json\n", "invalid JSON"),
        ("bad.txt", "x", "unsupported format"),
        ("empty.csv", "text,label\n", "no labeled sentiment examples"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_examples(path, "sentiment")


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9 prices up,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_examples(path, "sentiment")


def test_deduplicate_merges_heads_and_heavier_labels_override() -> None:
    merged = deduplicate(
        [
            Example("Acme beats estimates https://t.co/1", sentiment="positive"),
            Example("ACME beats estimates https://t.co/2", topic="Earnings"),
            Example("Acme beats estimates", sentiment="negative", weight=3.0),
            Example("Other news", topic="Macro"),
        ]
    )
    assert len(merged) == 2
    acme = next(e for e in merged if e.text.startswith("Acme"))
    assert (acme.sentiment, acme.topic, acme.weight) == ("negative", "Earnings", 3.0)


def test_split_is_stratified_and_reproducible() -> None:
    examples = [Example(f"n{i}", sentiment="negative") for i in range(100)]
    examples += [Example(f"p{i}", sentiment="positive") for i in range(300)]
    train_a, val_a = stratified_split(examples, 0.1, seed=7)
    _train_b, val_b = stratified_split(list(reversed(examples)), 0.1, seed=7)
    assert [e.text for e in val_a] == [e.text for e in val_b]
    assert Counter(e.sentiment for e in val_a) == {"negative": 10, "positive": 30}
    assert not {e.text for e in train_a} & {e.text for e in val_a}
    assert len(train_a) + len(val_a) == 400
    _, val_c = stratified_split(examples, 0.1, seed=8)
    assert {e.text for e in val_c} != {e.text for e in val_a}


def test_three_way_split_holds_out_select_and_report_where_the_old_validation_split_was() -> None:
    examples = [Example(f"n{i}", sentiment="negative") for i in range(100)]
    examples += [Example(f"p{i}", sentiment="positive", topic="Earnings") for i in range(300)]
    split = three_way_split(examples, 0.05, 0.05, seed=7)
    parts = [{e.text for e in part} for part in (split.train, split.select, split.report)]
    assert sum(map(len, parts)) == 400 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert Counter(strata(e) for e in split.select) == Counter(strata(e) for e in split.report)
    assert Counter(e.sentiment for e in split.report) == {"negative": 5, "positive": 15}
    # the same training part as a two-way split of the same held-out size: a model trained on that saw neither
    train, held = stratified_split(examples, 0.1, seed=7)
    assert {e.text for e in train} == parts[0] and {e.text for e in held} == parts[1] | parts[2]
    again = three_way_split(list(reversed(examples)), 0.05, 0.05, seed=7)
    assert [e.text for e in again.report] == [e.text for e in split.report]
    with pytest.raises(DataError, match="select and report fractions"):
        three_way_split(examples, 0.5, 0.5, seed=7)
