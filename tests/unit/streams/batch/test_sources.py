import json
from pathlib import Path

import pytest

from models.errors import DataError
from streams.batch.sources import expand_inputs, parse_bound, plan_files, read_shard
from streams.core.decode import Limits, decode
from streams.core.records import DeadLetter, NewsDocument
from streams.core.scoring import Message

LIMITS = Limits(1_000_000, 10_000)


def write_jsonl(path: Path, n: int) -> None:
    lines = [json.dumps({"id": f"d{i}", "published_at": "2026-11-20T10:00:00Z", "title": f"t {i}"}) for i in range(n)]
    path.write_text("\n".join(lines[: n // 2]) + "\n\n" + "\n".join(lines[n // 2 :]) + "\n")


def test_jsonl_shards_cover_every_line_once_with_line_numbers(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", 45)
    shards = plan_files([tmp_path / "a.jsonl"], shard_size=20)
    assert [s.count for s in shards] == [20, 20, 6]  # 45 documents and one blank line
    items = [item for shard in shards for item in read_shard(shard)]
    assert all(isinstance(item, Message) for item in items)
    ids = [json.loads(item.value)["id"] for item in items if isinstance(item, Message) and item.value]
    assert ids == [f"d{i}" for i in range(45)]
    numbers = [item.offset for item in items]
    assert numbers[:3] == [1, 2, 3] and numbers[-1] == 46  # the blank line keeps its number


def test_csv_rows_become_documents_and_broken_rows_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(
        b"id,published_at,title,body,tickers,desk\n"
        b'b1,2026-11-20T10:00:30Z,Rates up,,"AAPL, MSFT",macro\n'
        b"b2,2026-11-20T10:00:30Z,Caf\xe9 chain bankrupt,,,\n"
        b"b3,2026-11-20T10:00:30Z,too,many,cells,here,x\n"
    )
    (shard,) = plan_files([path], shard_size=100)
    first, second, third = list(read_shard(shard))
    assert isinstance(first, Message) and isinstance(second, Message)
    document = decode(first.value, LIMITS)
    assert isinstance(document, NewsDocument)
    assert document.tickers == ("AAPL", "MSFT") and document.body == "" and document.extra == {"desk": "macro"}
    letter = decode(second.value, LIMITS)
    assert isinstance(letter, DeadLetter) and letter.reason == "invalid_utf8"
    assert isinstance(third, DeadLetter) and third.reason == "schema" and third.offset == 4


def test_inputs_expand_globs_and_refuse_what_cannot_be_read(tmp_path: Path) -> None:
    for name in ("x1.jsonl", "x2.jsonl", "y.csv"):
        (tmp_path / name).write_text("")
    found = expand_inputs([str(tmp_path / "x*.jsonl"), str(tmp_path / "y.csv"), str(tmp_path / "x1.jsonl")])
    assert [p.name for p in found] == ["x1.jsonl", "x2.jsonl", "y.csv"]
    with pytest.raises(DataError, match="no such file"):
        expand_inputs([str(tmp_path / "z*.jsonl")])
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(DataError, match="unsupported format"):
        expand_inputs([str(tmp_path / "notes.txt")])


def test_range_bounds_are_offsets_or_zoned_times() -> None:
    assert parse_bound("120") == 120
    moment = parse_bound("2026-11-01T00:00:00+01:00")
    assert not isinstance(moment, int) and moment is not None and moment.isoformat() == "2026-10-31T23:00:00+00:00"
    with pytest.raises(DataError):
        parse_bound("2026-11-01T00:00:00")
    with pytest.raises(DataError):
        parse_bound("yesterday")
