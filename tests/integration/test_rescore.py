"""finmon rescore and compare on a real Apache Kafka broker and real files, as the command line runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from monitor.cli import main
from tests.integration.conftest import Pipeline, good_documents, stop
from tests.tiny_model import build_tiny_model

pytestmark = pytest.mark.integration
SAME = ("counts", "total", "unique_counts", "unique_total", "negative_share", "unique_negative_share", "top_tickers")


@pytest.fixture(scope="module")
def stricter_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second version that reads "flat" as negative: it disagrees with tiny-1 in a known way."""
    words = {"bad": "negative", "flat": "negative", "good": "positive"}
    return build_tiny_model(tmp_path_factory.mktemp("tiny-2"), version="tiny-2", sentiment_words=words)


def finmon(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def window_key(trend: dict[str, Any]) -> tuple[str, str, str, str]:
    return trend["scope"], trend["key"], trend["window"], trend["window_start"]


def test_a_topic_range_is_rescored_once_per_input_and_trends_match_the_worker(
    pipeline: Pipeline, tmp_path: Path, stricter_model: Path
) -> None:
    pipeline.extra_env["FINMON_WINDOWS__GRACE_SECONDS"] = "600"
    docs = good_documents(60)
    messages: list[tuple[bytes | None, bytes]] = [(d["id"].encode(), json.dumps(d).encode()) for d in docs]
    messages[20:20] = [(b"broken", b'{"id": "broken", '), (b"typed", json.dumps({"id": 7}).encode())]
    env = pipeline.env()
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        pipeline.produce(messages)
        same = finmon(
            [
                "rescore",
                "--topic",
                pipeline.topics["news"],
                "--output",
                "same.jsonl",
                "--trends-output",
                "trends.jsonl",
            ],
            env,
            tmp_path,
        )
        assert same.returncode == 0, same.stderr
        assert "rescored 60 documents with model tiny-1; rejected 2 (invalid_json 1, schema 1)" in same.stdout
        recomputed = {window_key(t): t for t in read_jsonl(tmp_path / "trends.jsonl")}

        def caught_up(records: list[dict[str, Any]]) -> bool:
            """Every minute window published, and the latest value of each window the recomputed one."""
            latest = {window_key(r): r for r in records}
            minutes = {k for k in recomputed if k[2] == "60s"} <= latest.keys()
            return minutes and all(
                k in recomputed and {f: recomputed[k][f] for f in SAME} == {f: r[f] for f in SAME}
                for k, r in latest.items()
            )

        live = {window_key(r): r for r in pipeline.consume("trends", caught_up, timeout=90)}
    finally:
        stop(worker)

    # the worker publishes every minute window it counted, and of the hopping windows those that
    # have trailed its clock; each of them must equal the recomputed final
    assert live.keys() <= recomputed.keys()
    assert {k for k in recomputed if k[2] == "60s"} == {k for k in live if k[2] == "60s"}
    assert any(k[2] == "900s" for k in live)
    assert all(t["final"] and t["model_version"] == "tiny-1" for t in recomputed.values())
    for key, seen in live.items():
        trend = recomputed[key]
        assert {f: trend[f] for f in SAME} == {f: seen[f] for f in SAME}, key
        assert trend["mean_score"] == pytest.approx(seen["mean_score"], abs=1e-5)

    expected = [key.decode() for key, _ in messages[10:40] if key not in (b"broken", b"typed")]
    rescored_topic = f"{pipeline.name}.rescored"
    run = finmon(
        [
            "rescore",
            "--topic",
            pipeline.topics["news"],
            "--from",
            "10",
            "--to",
            "40",
            "--model",
            str(stricter_model),
            "--output-topic",
            rescored_topic,
            "--dlq-topic",
            pipeline.topics["dlq"] + ".rescore",
            "--state",
            str(tmp_path / "range-state"),
        ],
        env,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "rescored 28 documents with model tiny-2; rejected 2" in run.stdout
    out = pipeline.consume(rescored_topic, lambda r: len(r) >= len(expected), timeout=30)
    time.sleep(1)
    out = pipeline.consume(rescored_topic, lambda r: len(r) > len(expected), timeout=2)
    assert sorted(r["id"] for r in out) == sorted(expected)
    assert {r["model_version"] for r in out} == {"tiny-2"}
    flat = [r for r in out if r["title"].startswith("flat")]
    assert flat and all(r["sentiment"] == "negative" for r in flat)
    dead = pipeline.consume(pipeline.topics["dlq"] + ".rescore", lambda r: len(r) >= 2, timeout=30)
    assert sorted(d["reason"] for d in dead) == ["invalid_json", "schema"]
    assert sorted(d["source_offset"] for d in dead) == [20, 21]


def test_an_interrupted_rescore_resumes_without_redoing_or_duplicating(tmp_path: Path, tiny_model: Path) -> None:
    source = tmp_path / "history.jsonl"
    with source.open("w") as out:
        for i in range(60_000):
            word = ("good", "bad", "flat")[i % 3]
            moment = f"2026-11-{1 + i // 3000:02d}T10:{(i // 50) % 60:02d}:00Z"
            out.write(json.dumps({"id": f"h{i}", "published_at": moment, "title": f"{word} oil w{i % 40}"}) + "\n")
    state = tmp_path / "state"
    args = ["rescore", "--input", str(source), "--model", str(tiny_model), "--output", "out.jsonl"]
    args += ["--shard-size", "3000", "--state", str(state), "--no-progress"]
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", *args], cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while len(list(state.glob("*.done"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    stop(process, signal.SIGKILL)
    finished = {p.name: p.stat().st_mtime_ns for p in state.glob("*.done")}
    assert 3 <= len(finished) < 20, "the run should have been stopped midway"
    assert not (tmp_path / "out.jsonl").exists()

    rerun = subprocess.run([sys.executable, "-m", "monitor.cli", *args], cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming" in rerun.stderr
    ids = [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(ids) == 60_000 and set(ids) == {f"h{i}" for i in range(60_000)}
    assert {p.name: p.stat().st_mtime_ns for p in state.glob("*.done") if p.name in finished} == finished
    assert len(list(state.glob("*.done"))) == 20

    first = (tmp_path / "out.jsonl").read_bytes()
    again = subprocess.run([sys.executable, "-m", "monitor.cli", *args], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0 and (tmp_path / "out.jsonl").read_bytes() == first  # idempotent


def test_mixed_files_with_bad_rows_in_two_processes(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyarrow = pytest.importorskip("pyarrow.parquet", reason="the [parquet] extra is part of the test install")
    news = tmp_path / "news-a.jsonl"
    lines = [
        json.dumps({"id": f"j{i}", "published_at": "2026-11-20T10:00:00Z", "title": f"bad fed w{i}"}) for i in range(30)
    ]
    lines[5] = "{not json"
    lines[6] = json.dumps({"id": "j6", "published_at": "2026-11-20T10:00:00", "title": "naive"})
    lines[7] = json.dumps({"id": "j7", "published_at": "2026-11-20T10:00:00Z", "title": "", "body": " "})
    news.write_text("\n".join(lines) + "\n")
    (tmp_path / "news-b.csv").write_bytes(
        b"id,published_at,source,title,tickers\n"
        b'c1,2026-11-20T10:00:10Z,wire,good dividend,"AAPL,MSFT"\n'
        b"c2,2026-11-20T10:00:20Z,wire,\xff\xfe broken bytes,\n"
        b"c3,2026-11-20T10:00:30Z,wire,flat ipo,,extra cell\n"
        b"c4,2026-11-20T10:00:40Z,wire,good ipo,TSLA\n"
    )
    code = main(
        [
            "rescore",
            "--input",
            str(tmp_path / "news-*"),
            "--model",
            str(tiny_model),
            "--output",
            str(tmp_path / "out.parquet"),
            "--rejects",
            str(tmp_path / "rejects.jsonl"),
            "--trends-output",
            str(tmp_path / "trends.jsonl"),
            "--workers",
            "2",
            "--shard-size",
            "10",
            "--state",
            str(tmp_path / "state"),
            "--no-progress",
        ]
    )
    assert code == 0
    summary = (
        "rescored 29 documents with model tiny-1; rejected 5 (empty_text 1, invalid_json 1, invalid_utf8 1, schema 2)"
    )
    assert summary in capsys.readouterr().out
    table = pyarrow.read_table(tmp_path / "out.parquet").to_pylist()
    assert sorted(r["id"] for r in table) == sorted([f"j{i}" for i in range(30) if i not in (5, 6, 7)] + ["c1", "c4"])
    assert {r["model_version"] for r in table} == {"tiny-1"}
    assert json.loads(next(r for r in table if r["id"] == "c1")["tickers"]) == ["AAPL", "MSFT"]
    rejects = read_jsonl(tmp_path / "rejects.jsonl")
    assert sorted((r["source_topic"].rsplit("/", 1)[-1], r["source_offset"]) for r in rejects) == [
        ("news-a.jsonl", 6),
        ("news-a.jsonl", 7),
        ("news-a.jsonl", 8),
        ("news-b.csv", 3),
        ("news-b.csv", 4),
    ]
    topics = {t["key"]: t["total"] for t in read_jsonl(tmp_path / "trends.jsonl") if t["window"] == "60s"}
    assert topics["Fed / Central Banks"] == 27 and topics["AAPL"] == 1


def test_compare_reports_agreement_flips_and_accuracy(
    tmp_path: Path, tiny_model: Path, stricter_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "labeled.csv"
    words = {"good": "positive", "bad": "negative", "flat": "neutral"}
    rows = ["text,sentiment"] + [f"{w} oil w{i},{words[w]}" for i in range(30) for w in [list(words)[i % 3]]]
    rows.append('"<script>alert(1)</script> flat fed",neutral')
    data.write_text("\n".join(rows) + "\n")
    code = main(
        [
            "compare",
            "--old",
            str(tiny_model),
            "--new",
            str(stricter_model),
            "--data",
            str(data),
            "--labels",
            "sentiment",
            "--json",
            str(tmp_path / "report.json"),
            "--html",
            str(tmp_path / "report.html"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["agreement"] == {"sentiment": pytest.approx(20 / 31, abs=1e-6), "topic": 1.0}
    assert report["confusion"]["sentiment"]["neutral"]["negative"] == 11
    assert report["accuracy"]["sentiment"] == {"labeled": 31, "old": 1.0, "new": pytest.approx(20 / 31, abs=1e-4)}
    assert report["negative_share"]["Energy / Oil"]["new_negative_share"] == pytest.approx(20 / 30, abs=1e-6)
    assert "tiny-1 -> tiny-2 over 31 documents" in capsys.readouterr().out
    page = (tmp_path / "report.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_batch_commands_refuse_bad_requests_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.jsonl").write_text("")
    cases = [
        (["rescore", "--input", str(tmp_path / "a.jsonl")], "give --output FILE and/or --output-topic NAME"),
        (["rescore", "--output", "x.jsonl"], "give either --topic or --input"),
        (["rescore", "--input", str(tmp_path / "a.jsonl"), "--output", str(tmp_path / "x.csv")], "unsupported output"),
        (["rescore", "--input", str(tmp_path / "z*.jsonl"), "--output", str(tmp_path / "x.jsonl")], "no such file"),
        (
            ["rescore", "--input", str(tmp_path / "a.jsonl"), "--from", "3", "--output", str(tmp_path / "y.jsonl")],
            "--from",
        ),
        (["compare", "--old", str(tmp_path), "--new", str(tmp_path), "--labels", "mood"], "expected sentiment"),
    ]
    for argv, message in cases:
        assert exit_code(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


def exit_code(argv: list[str]) -> int:
    """What the shell sees: main's return value, or argparse's exit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_a_time_range_of_a_topic_is_rescored_by_the_brokers_timestamps(pipeline: Pipeline, tmp_path: Path) -> None:
    """--from/--to as RFC 3339 times: Kafka's offsets_for_times picks the first offset at or after each."""
    base = 1_796_000_000_000  # ms; one message a minute, partition by partition as keyed
    docs = good_documents(12)
    producer = KafkaProducer(bootstrap_servers=pipeline.url, acks="all")
    try:
        for minute, doc in enumerate(docs):
            producer.send(
                pipeline.topics["news"],
                json.dumps(doc).encode(),
                doc["id"].encode(),
                timestamp_ms=base + minute * 60_000,
            )
        producer.flush()
    finally:
        producer.close()

    def at(minute: int) -> str:
        return datetime.fromtimestamp((base + minute * 60_000) / 1000, UTC).isoformat().replace("+00:00", "Z")

    out = tmp_path / "range.jsonl"
    args = ["rescore", "--topic", pipeline.topics["news"], "--from", at(3), "--to", at(8), "--output", str(out)]
    run = finmon([*args, "--state", str(tmp_path / "state")], pipeline.env(), tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in read_jsonl(out)) == sorted(d["id"] for d in docs[3:8])
