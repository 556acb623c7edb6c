"""The worker against a real Apache Kafka broker: scoring, dead letters, windows, restart. No Kafka mocks."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.conftest import (
    Pipeline,
    encode,
    expected_windows,
    good_documents,
    stop,
    wait_for,
    windows_match,
)
from tests.kafka import free_port

pytestmark = pytest.mark.integration


BAD: list[tuple[str, bytes | None]] = [
    ("invalid_json", b"{not json"),
    ("invalid_utf8", b'{"id": "x", "title": "caf\xe9"}'),
    ("schema", b"[1, 2, 3]"),
    ("schema", json.dumps({"published_at": "2026-11-24T09:00:00Z", "title": "no id"}).encode()),
    ("schema", json.dumps({"id": "naive", "published_at": "2026-11-24T09:00:00", "title": "t"}).encode()),
    ("schema", json.dumps({"id": "wrong", "published_at": "2026-11-24T09:00:00Z", "title": 5}).encode()),
    ("empty_text", json.dumps({"id": "empty", "published_at": "2026-11-24T09:00:00Z", "title": " "}).encode()),
    ("too_large", json.dumps({"id": "big", "published_at": "2026-11-24T09:00:00Z", "title": "x" * 9000}).encode()),
    ("too_large", json.dumps({"id": "long", "published_at": "2026-11-24T09:00:00Z", "body": "w1 " * 1000}).encode()),
    ("empty_message", None),
]


def test_every_document_ends_scored_or_dead_lettered_and_windows_count_each_id_once(pipeline: Pipeline) -> None:
    pipeline.extra_env.update({"FINMON_STREAM__MAX_MESSAGE_BYTES": "8192", "FINMON_STREAM__MAX_TEXT_CHARS": "2000"})
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker)
        docs = good_documents(40)
        duplicate = docs[5]
        messages: list[tuple[bytes | None, bytes | None]] = [encode(d) for d in docs]
        messages += [(b"bad", value) for _, value in BAD] + [encode(duplicate)]
        pipeline.produce(messages)  # type: ignore[arg-type]

        scored = pipeline.consume("scored", lambda r: len(r) >= 41)
        ids = Counter(r["id"] for r in scored)
        assert ids == Counter({d["id"]: 1 for d in docs} | {duplicate["id"]: 2})
        first = next(r for r in scored if r["id"] == "doc-0")
        assert first["model_version"] == "tiny-1"
        assert first["sentiment"] == "positive" and first["topic"] == "Dividend"
        assert first["tickers"] == ["ACME", "ZZZ"]
        assert set(first) >= {
            "published_at",
            "source",
            "title",
            "topic_scores",
            "sentiment_scores",
            "score",
            "scored_at",
            "schema_version",
        }

        dead = pipeline.consume("dlq", lambda r: len(r) >= len(BAD))
        assert Counter(r["reason"] for r in dead) == Counter(reason for reason, _ in BAD)
        assert all(r["source_topic"] == pipeline.topics["news"] and r["source_offset"] is not None for r in dead)

        expected = expected_windows(docs)
        pipeline.consume("trends", windows_match(expected))
        assert windows_match(expected)(pipeline.consume("trends", windows_match(expected), timeout=30))

        metrics = pipeline.metrics()
        assert 'finmon_documents_dead_lettered_total{reason="too_large"} 2.0' in metrics
        assert re.search(r'finmon_window_events_total\{outcome="duplicate",scope="topic"\} 1\.0', metrics)
        assert "finmon_documents_consumed_total 51.0" in metrics
    finally:
        stop(worker)
    assert worker.returncode == 0 or worker.returncode == -signal.SIGTERM


def test_a_killed_worker_restarts_without_losing_or_double_counting(pipeline: Pipeline) -> None:
    worker = pipeline.start_worker()
    first, second = good_documents(30), good_documents(30, start=30)
    try:
        pipeline.wait_ready(worker)
        pipeline.produce([encode(d) for d in first])
        pipeline.consume("scored", lambda r: len(r) >= 10)
    finally:
        stop(worker, signal.SIGKILL)
    pipeline.produce([encode(d) for d in second])
    worker = pipeline.start_worker()
    try:
        pipeline.wait_ready(worker, timeout=90)
        everything = {d["id"] for d in first + second}
        scored = pipeline.consume("scored", lambda r: {x["id"] for x in r} >= everything, timeout=90)
        assert {r["id"] for r in scored} >= everything
        expected = expected_windows(first + second)
        records = pipeline.consume("trends", windows_match(expected), timeout=60)
        assert windows_match(expected)(records)
    finally:
        stop(worker)


def test_demo_starts_scores_shows_windows_and_stops_cleanly(tiny_model: Path, tmp_path: Path) -> None:
    env = {
        "FINMON_MODEL__PATH": str(tiny_model),
        "FINMON_STREAM__WEB_PORT": str(free_port()),
        "FINMON_STREAM__DATA_DIR": str(tmp_path / "state"),
        "FINMON_WINDOWS__TUMBLING_SECONDS": "5",
        "FINMON_WINDOWS__HOPPING_STEP_SECONDS": "5",
        "FINMON_WINDOWS__GRACE_SECONDS": "1",
        "FINMON_WINDOWS__EMIT_INTERVAL": "1",
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "demo", "--duration", "30", "--rate", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    first = demo.stdout.readline()
    link = re.search(r"dashboard (http://\S+/dashboard\?token=(\S+))", first)
    assert link, first
    base = link.group(1).split("/dashboard")[0]
    signed_in = urllib.request.Request(f"{base}/api/whoami", headers={"Authorization": f"Bearer {link.group(2)}"})
    wait_for(lambda: reachable(signed_in), "the demo's dashboard answered its own link", 60)
    with urllib.request.urlopen(signed_in, timeout=5) as page:
        assert json.loads(page.read())["can_review"] is True  # the link signs in an analyst: reviews work
    out, err = demo.communicate(timeout=120)
    assert demo.returncode == 0, err[-3000:]
    out = first + out
    scored = [int(n) for n in re.findall(r"scored (\d+)", out)]
    assert scored and max(scored) > 50
    assert re.search(r"^\s+\S.*\d+\s+\d+\s+\d+\s+\d+%", out, re.MULTILINE), out[-2000:]
    assert "finmon demo: stopped" in out
    pids = [int(p) for p in re.findall(r"(?:broker|worker|dashboard) pid (\d+)", out)]
    assert len(pids) == 3
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} left behind"


def reachable(request: urllib.request.Request) -> bool:
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except OSError:
        return False


def demo_env(model: Path, tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "FINMON_MODEL__PATH": str(model),
        "FINMON_STREAM__WEB_PORT": str(port),
        "FINMON_STREAM__DATA_DIR": str(tmp_path / "state"),
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }


def test_the_demo_names_a_busy_port_and_the_setting_that_changes_it(tiny_model: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "demo", "--duration", "30"],
            env=demo_env(tiny_model, tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"finmon: error: port {port} on 127.0.0.1 is in use")
    assert "FINMON_STREAM__WEB_PORT" in result.stderr


def test_the_demo_reports_a_worker_that_dies_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "no-model").mkdir()  # the worker refuses it and exits; the demo must not carry on showing nothing
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "demo", "--duration", "90"],
        env=demo_env(tmp_path / "no-model", tmp_path, free_port()),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("finmon demo: error: the worker exited with status 2: finmon: error: model folder"), last
    pids = [int(p) for p in re.findall(r"(?:broker|worker|dashboard) pid (\d+)", result.stdout)]
    assert len(pids) == 3 and not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_worker_started_in_a_fresh_directory_creates_its_state_folder_and_scores(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """As the README's real-cluster section runs it: from any directory, with the default state folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = pipeline.env()
    del env["FINMON_STREAM__DATA_DIR"]
    log = (pipeline.folder / "worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "worker"], env=env, cwd=elsewhere, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        pipeline.wait_ready(worker)
        docs = good_documents(5)
        pipeline.produce([encode(d) for d in docs])
        scored = pipeline.consume("scored", lambda r: len(r) >= 5)
        assert {r["id"] for r in scored} == {d["id"] for d in docs}
        assert (elsewhere / "var" / "finmon").is_dir()
    finally:
        stop(worker)
    env["FINMON_STREAM__DATA_DIR"] = "/proc/finmon-state"
    refused = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "worker"], env=env, cwd=elsewhere, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "cannot create the state folder '/proc/finmon-state'" in refused.stderr
