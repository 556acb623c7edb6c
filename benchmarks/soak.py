"""Soak: one worker fed at a fraction of its measured capacity for a while; memory, backlog and
latency must stay flat. A benchmark, not a test: it prints one row per interval.

Capacity is measured first in the same run (a pre-filled topic drained flat out). Backlog is
documents produced minus documents scored, counted here; latency is published_at -> scored_at
of each document. The broker is a single-node Apache Kafka (the test setup's jars) or, with
``--broker embedded``, the demo's embedded one.

    python benchmarks/soak.py [--minutes 10] [--load 0.8] [--every 60] [--broker kafka|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brokers import broker_of, cpu_seconds, rss_mib  # benchmarks/brokers.py, beside this file
from pipeline import collect, documents, produce, wait_ready  # benchmarks/pipeline.py, beside this file

from monitor.embedded_broker import free_port
from monitor.feed import FEED_LINGER_MS
from monitor.settings import Settings


def start_worker(url: str, work: Path, port: int, kafka: bool) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        FINMON_KAFKA__BOOTSTRAP_SERVERS=url,
        FINMON_STREAM__APP_ID="soak",
        FINMON_STREAM__SESSION_TIMEOUT="6",
        FINMON_STREAM__HEARTBEAT_INTERVAL="2",
        FINMON_STREAM__WEB_PORT=str(port),
        FINMON_STREAM__DATA_DIR=str(work / "state"),
        FINMON_TOPICS__NEWS="soak.news",
        FINMON_TOPICS__SCORED="soak.scored",
        FINMON_MODEL__DEVICE="cpu",
        FINMON_STREAM__IDEMPOTENT_PRODUCER=str(kafka).lower(),  # the embedded broker grants no producer ids
    )
    log = (work / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def soak(
    url: str, rate: float, seconds: float, every: float, pid: int, broker: int, linger_ms: int
) -> list[tuple]:
    docs = documents(int(rate * seconds) + 1)
    produced = [0]
    latencies: list[float] = []
    scored = [0]
    rows: list[tuple] = []
    done = asyncio.Event()

    async def feed() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=linger_ms)
        await producer.start()
        began = time.monotonic()
        try:
            for i, doc in enumerate(docs):
                doc = {**doc, "id": f"soak-{i}", "published_at": datetime.now(UTC).isoformat()}
                await producer.send("soak.news", json.dumps(doc).encode(), key=doc["id"].encode())
                produced[0] += 1
                delay = began + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if time.monotonic() - began >= seconds:
                    break
            await producer.flush()
        finally:
            await producer.stop()
            done.set()

    async def read() -> None:
        consumer = AIOKafkaConsumer("soak.scored", bootstrap_servers=url, group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        try:
            while not (done.is_set() and scored[0] >= produced[0]):
                for batch in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                    for message in batch:
                        record = json.loads(message.value)
                        if not str(record["id"]).startswith("soak-"):
                            continue
                        scored[0] += 1
                        latencies.append(
                            datetime.fromisoformat(record["scored_at"]).timestamp()
                            - datetime.fromisoformat(record["published_at"]).timestamp()
                        )
        finally:
            await consumer.stop()

    async def sample() -> None:
        began = last = time.monotonic()
        cpu = {p: cpu_seconds(p) for p in (pid, broker)}
        before = 0
        while not done.is_set():
            await asyncio.sleep(every)
            window, latencies[:] = list(latencies), []
            p50, p99 = (np.percentile(window, 50), np.percentile(window, 99)) if window else (float("nan"),) * 2
            now, used = time.monotonic(), {p: cpu_seconds(p) for p in cpu}
            share = [(used[p] - cpu[p]) / (now - last) for p in (pid, broker)]
            per_doc = (used[pid] - cpu[pid]) * 1000 / max(1, scored[0] - before)
            cpu, last, before = used, now, scored[0]
            rows.append(
                (now - began, produced[0], scored[0], produced[0] - scored[0], rss_mib(pid), p50, p99, per_doc, *share)
            )
            print(f"sample {rows[-1]}", file=sys.stderr, flush=True)

    reader = asyncio.create_task(read())
    await asyncio.gather(feed(), sample())
    await asyncio.wait_for(reader, timeout=120)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load", type=float, default=0.8, help="fraction of the measured capacity")
    parser.add_argument("--rate", type=float, default=None, help="docs/s to feed, instead of --load")
    parser.add_argument(
        "--feed-linger", type=int, default=FEED_LINGER_MS, help="ms the feeder's producer lingers, as `finmon feed`'s"
    )
    parser.add_argument("--every", type=float, default=60.0, help="seconds per row")
    parser.add_argument("--calibrate", type=int, default=2000, help="documents for the capacity run")
    parser.add_argument("--broker", choices=["kafka", "embedded"], default="kafka", help="single-node Apache Kafka")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="finmon-soak-"))
    port = free_port()
    with broker_of(args.broker, work) as (url, broker_pid):
        worker = start_worker(url, work, port, args.broker == "kafka")
        try:
            wait_ready(port, worker)
            calibration = documents(args.calibrate)
            asyncio.run(produce(url, "soak.news", calibration, None))
            began = time.monotonic()
            records, last = asyncio.run(collect(url, "soak.scored", len(calibration), timeout=600))
            capacity = len(records) / (last - began)
            rate = args.rate or capacity * args.load
            print(f"capacity {capacity:.1f} docs/s; soaking at {rate:.1f} docs/s", file=sys.stderr, flush=True)
            rss0 = rss_mib(worker.pid)
            rows = asyncio.run(soak(url, rate, args.minutes * 60, args.every, worker.pid, broker_pid, args.feed_linger))
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
    settings = Settings()  # what the worker read from the same environment
    windows, stream = settings.windows, settings.stream
    kept = windows.hopping_seconds + windows.grace_seconds
    print(f"broker: {args.broker}")
    print(
        f"windows {windows.tumbling_seconds} s and {windows.hopping_seconds} s (window state kept {kept} s); "
        f"worker linger {stream.producer_linger * 1000:.0f} ms, feeder linger {args.feed_linger} ms"
    )
    print(
        f"capacity {capacity:.1f} docs/s, fed at {rate:.1f} docs/s ({rate / capacity:.0%}); "
        f"RSS after warm-up {rss0:.0f} MiB"
    )
    print(
        f"{'t s':>6}{'produced':>10}{'scored':>10}{'backlog':>9}{'RSS MiB':>9}{'p50 s':>8}{'p99 s':>8}"
        f"{'worker ms/doc':>15}{'worker CPU':>12}{'broker CPU':>12}"
    )
    for t, produced, scored, backlog, rss, p50, p99, per_doc, worker_cpu, broker_cpu in rows:
        print(
            f"{t:>6.0f}{produced:>10}{scored:>10}{backlog:>9}{rss:>9.0f}{p50:>8.2f}{p99:>8.2f}"
            f"{per_doc:>15.2f}{worker_cpu:>12.0%}{broker_cpu:>12.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
