"""End-to-end pipeline speed: feed -> broker -> one worker -> news.scored, on Apache Kafka and on
the demo's embedded broker in the same run.

For each broker and batching setting: docs/s through the worker when the topic is pre-filled,
event -> scored latency p50/p99 while feeding at 50% of that rate, and the worker's and the
broker's CPU share over both phases; beside the classifier alone (same texts, same batch size)
measured in the same run. The ratio is the pipeline's overhead.

    python benchmarks/pipeline.py [--docs 3000] [--configs 16:0.05 64:0.1 256:0.2] [--broker kafka embedded]
    python benchmarks/pipeline.py --linking-only   # the scoring step with and without company linking

Apache Kafka comes from the test setup's jars (`python -m tests.kafka fetch`, Java 17).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brokers import broker_of, cpu_seconds  # benchmarks/brokers.py, beside this file

from models.runtime import Classifier
from models.settings import DEFAULT_MODEL_DIR
from monitor.embedded_broker import free_port
from monitor.feed import FeedOptions, SyntheticNews


def documents(count: int) -> list[dict[str, object]]:
    generator = SyntheticNews(FeedOptions(seed=11))
    return [generator.next() for _ in range(count)]


async def produce(url: str, topic: str, docs: list[dict[str, object]], rate: float | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=5)
    await producer.start()
    began = time.monotonic()
    try:
        for i, doc in enumerate(docs):
            doc = {**doc, "published_at": datetime.now(UTC).isoformat()}
            await producer.send(topic, json.dumps(doc).encode(), key=str(doc["id"]).encode())
            if rate:
                delay = began + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        await producer.flush()
    finally:
        await producer.stop()


async def collect(url: str, topic: str, count: int, timeout: float) -> tuple[list[dict[str, object]], float]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=url, group_id=None, auto_offset_reset="earliest", isolation_level="read_committed"
    )
    await consumer.start()
    records: list[dict[str, object]] = []
    last = time.monotonic()
    deadline = last + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                records.extend(json.loads(m.value) for m in batch)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return records, last


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("worker exited during start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("worker did not become ready")


def run_config(
    url: str,
    batch: int,
    within: float,
    docs: list[dict[str, object]],
    seconds: float,
    work: Path,
    kafka: bool,
    guarantee: str = "at_least_once",
) -> tuple[float, float, float, float]:
    name = f"bench{batch}x{int(within * 1000)}{'eos' if guarantee == 'exactly_once' else ''}"
    port = free_port()
    env = dict(
        os.environ,
        FINMON_KAFKA__BOOTSTRAP_SERVERS=url,
        FINMON_STREAM__APP_ID=name,
        FINMON_STREAM__BATCH_MAX=str(batch),
        FINMON_STREAM__BATCH_WITHIN=str(within),
        FINMON_STREAM__SESSION_TIMEOUT="6",
        FINMON_STREAM__HEARTBEAT_INTERVAL="2",
        FINMON_STREAM__WEB_PORT=str(port),
        FINMON_STREAM__DATA_DIR=str(work / name),
        FINMON_TOPICS__NEWS=f"{name}.news",
        FINMON_TOPICS__SCORED=f"{name}.scored",
        FINMON_TOPICS__DLQ=f"{name}.dlq",
        FINMON_TOPICS__TRENDS=f"{name}.trends",
        FINMON_MODEL__DEVICE="cpu",
        FINMON_STREAM__IDEMPOTENT_PRODUCER=str(kafka).lower(),  # the embedded broker grants no producer ids
        FINMON_STREAM__PROCESSING_GUARANTEE=guarantee,
    )
    with (work / f"{name}.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(port, worker)
        worker_began, cpu_began = time.monotonic(), cpu_seconds(worker.pid)
        asyncio.run(produce(url, f"{name}.news", docs, None))  # pre-filled: the worker runs flat out
        began = time.monotonic()
        records, last = asyncio.run(collect(url, f"{name}.scored", len(docs), timeout=600))
        throughput = len(records) / (last - began)
        paced = docs[: max(50, int(throughput * 0.5 * seconds))]
        feeder = asyncio.run(_paced(url, name, paced, throughput * 0.5, len(docs)))
        latencies = [
            datetime.fromisoformat(str(r["scored_at"])).timestamp()
            - datetime.fromisoformat(str(r["published_at"])).timestamp()
            for r in feeder[len(docs) :]
        ]
        share = (cpu_seconds(worker.pid) - cpu_began) / (time.monotonic() - worker_began)
        return throughput, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)), share
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(120)  # a transactional worker closes a producer per partition
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


async def _paced(
    url: str, name: str, docs: list[dict[str, object]], rate: float, already: int
) -> list[dict[str, object]]:
    collector = asyncio.create_task(collect(url, f"{name}.scored", already + len(docs), timeout=120))
    await produce(url, f"{name}.news", docs, rate)
    records, _ = await collector
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--configs", nargs="+", default=["16:0.05", "64:0.1", "256:0.2"], help="batch_max:batch_within pairs"
    )
    parser.add_argument("--broker", nargs="+", choices=["kafka", "embedded"], default=["kafka", "embedded"])
    parser.add_argument(
        "--guarantee",
        nargs="+",
        choices=["at_least_once", "exactly_once"],
        default=["at_least_once", "exactly_once"],
        help="processing guarantees to compare (exactly_once on Apache Kafka only)",
    )
    parser.add_argument("--linking-only", action="store_true", help="only the in-process cost of company linking")
    args = parser.parse_args()
    docs = documents(args.docs)
    if args.linking_only:
        linking_cost(docs)
        return 0
    texts = [str(d["title"]) for d in docs]
    work = Path(tempfile.mkdtemp(prefix="finmon-pipeline-"))
    rows = []
    for kind in args.broker:
        with broker_of(kind, work) as (url, pid):
            runs = [(g, c) for g in args.guarantee for c in args.configs if kind == "kafka" or g == "at_least_once"]
            for guarantee, config in runs:
                batch, within = int(config.split(":")[0]), float(config.split(":")[1])
                classifier = Classifier.load(DEFAULT_MODEL_DIR, device="cpu", batch_size=batch)
                began = time.perf_counter()
                classifier.predict(texts)
                alone = len(texts) / (time.perf_counter() - began)
                broker_cpu, broker_began = cpu_seconds(pid), time.monotonic()
                throughput, p50, p99, worker_share = run_config(
                    url, batch, within, docs, args.seconds, work, kind == "kafka", guarantee
                )
                broker_share = (cpu_seconds(pid) - broker_cpu) / (time.monotonic() - broker_began)
                label = kind if guarantee == "at_least_once" else f"{kind} EOS"
                rows.append((label, batch, within, alone, throughput, p50, p99, worker_share, broker_share))
                print(f"done {label} batch={batch} within={within}", file=sys.stderr, flush=True)
    print(
        f"{'broker':>10}{'batch_max':>10}{'within s':>10}{'classifier docs/s':>19}{'pipeline docs/s':>17}{'ratio':>8}"
        f"{'p50 s @50%':>12}{'p99 s @50%':>12}{'worker CPU':>12}{'broker CPU':>12}"
    )
    for kind, batch, within, alone, throughput, p50, p99, worker_share, broker_share in rows:
        print(
            f"{kind:>10}{batch:>10}{within:>10.2f}{alone:>19.1f}{throughput:>17.1f}{throughput / alone:>8.2f}"
            f"{p50:>12.3f}{p99:>12.3f}{worker_share:>12.0%}{broker_share:>12.0%}"
        )
    for label in dict.fromkeys(r[0] for r in rows):
        ratios = [r[4] / r[3] for r in rows if r[0] == label]
        print(f"{label}: median pipeline/classifier ratio {statistics.median(ratios):.2f}")
    linking_cost(docs)
    return 0


def linking_cost(docs: list[dict[str, object]], rounds: int = 3) -> None:
    """The scoring step (decode, classify, tag) with company linking against without it, in process,
    alternating so drift in the machine's speed hits both alike."""
    from streams.core.companies import Linker, linker_for
    from streams.core.decode import Limits
    from streams.core.scoring import Message, score_batch

    classifier = Classifier.load(DEFAULT_MODEL_DIR, device="cpu", batch_size=64)
    messages = [Message(json.dumps(d).encode()) for d in docs]
    chunks = [messages[i : i + 64] for i in range(0, len(messages), 64)]
    linkers = {"with linking": linker_for(), "without": Linker([])}
    seconds = dict.fromkeys(linkers, 0.0)
    for _ in range(rounds):
        for name, linker in linkers.items():
            began = time.perf_counter()
            for chunk in chunks:
                score_batch(chunk, classifier, Limits(), linker=linker)
            seconds[name] += time.perf_counter() - began
    rates = {name: rounds * len(messages) / spent for name, spent in seconds.items()}
    print(f"{'scoring step':<16}{'docs/s':>10}{'x without':>11}")
    for name, rate in rates.items():
        print(f"{name:<16}{rate:>10.1f}{rate / rates['without']:>10.3f}x")


if __name__ == "__main__":
    sys.exit(main())
