"""One reader of inputs: training, scoring and rescoring see the same rows with the same line numbers,
and differ only in what a bad row means to them."""

from pathlib import Path

import pytest

from models.dataset import read_examples
from models.errors import DataError
from models.files import BadRow, Row, records, rows
from streams.batch.sources import read_file
from streams.core.records import DeadLetter


def test_a_csv_row_becomes_the_document_the_worker_would_receive(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text('id,title,tickers,label\na1,"Tesla\nfalls","TSLA, NKE",\na2,Quiet,,positive\na3,x,y,z,w\n')
    got = list(rows(path))
    assert got[0] == Row(3, b'{"id": "a1", "title": "Tesla\\nfalls", "tickers": ["TSLA", "NKE"]}')
    assert isinstance(got[2], BadRow) and got[2].line == 5 and got[2].reason == "schema"


def test_training_stops_at_the_line_scoring_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "labeled.jsonl"
    path.write_text('{"text": "good", "label": "positive"}\n\n{not json\n[1]\n')
    bad = [r for r in records(path) if isinstance(r, BadRow)]
    assert [(b.line, b.reason) for b in bad] == [(3, "invalid_json"), (4, "schema")]
    with pytest.raises(DataError, match="labeled.jsonl:3: invalid JSON"):
        read_examples(path, "sentiment")
    items = list(read_file(path))
    assert [i.offset for i in items] == [1, 3, 4]  # the same numbering; decoding dead-letters lines 3 and 4
    assert not any(isinstance(i, DeadLetter) for i in items)


def test_a_folder_or_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        list(rows(tmp_path))
    with pytest.raises(DataError, match="no such file"):
        list(rows(tmp_path / "none.csv"))
    with pytest.raises(DataError, match="unsupported format"):
        (tmp_path / "x.txt").write_text("x")
        list(rows(tmp_path / "x.txt"))
