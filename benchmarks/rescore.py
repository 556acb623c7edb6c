"""Batch rescoring speed: `finmon rescore` from files and from the broker, 1 and 2 worker processes.

Beside it, in the same run, the classifier alone over the same texts (one process, all cores):
the ratio says what reading, decoding, writing and the windows cost on top of the model. Every
rescore is the real command (a subprocess), timed from start to exit, model loading included.

    python benchmarks/rescore.py [--docs 100000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.runtime import Classifier
from models.settings import DEFAULT_MODEL_DIR
from monitor.embedded_broker import EmbeddedBroker
from monitor.feed import FeedOptions, SyntheticNews

TOPIC = "bench.news"


def documents(count: int) -> list[dict[str, object]]:
    generator = SyntheticNews(FeedOptions(seed=7))
    return [generator.next() for _ in range(count)]


async def fill(url: str, docs: list[dict[str, object]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        for doc in docs:
            await producer.send(TOPIC, json.dumps(doc).encode(), key=str(doc["id"]).encode())
        await producer.flush()
    finally:
        await producer.stop()


def rescore(args: list[str], env: dict[str, str], work: Path) -> float:
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "monitor.cli", "rescore", *args, "--no-progress"],
        env=env,
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    docs = documents(args.docs)
    work = Path(tempfile.mkdtemp(prefix="finmon-rescore-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # exported models, files: gone after
    source = work / "news.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs))

    classifier = Classifier.load(args.model, device="cpu", batch_size=64)
    texts = [" ".join(str(d.get(k) or "") for k in ("title", "body")).strip() for d in docs]
    began = time.perf_counter()
    classifier.predict(texts)
    alone = len(texts) / (time.perf_counter() - began)
    print(f"classifier alone: {alone:.1f} docs/s", file=sys.stderr, flush=True)

    rows = []
    common = ["--model", str(args.model), "--batch-size", str(args.batch_size), "--shard-size", "10000"]
    with EmbeddedBroker(log_file=work / "broker.log") as broker:
        asyncio.run(fill(broker.url, docs))
        env = dict(os.environ, FINMON_KAFKA__BOOTSTRAP_SERVERS=broker.url, FINMON_MODEL__DEVICE="cpu")
        for workers in args.workers:
            for name, source_args in (("files", ["--input", str(source)]), ("broker", ["--topic", TOPIC])):
                out = work / f"{name}-{workers}.jsonl"
                state = work / f"state-{name}-{workers}"
                seconds = rescore(
                    [*source_args, *common, "--workers", str(workers), "--output", str(out), "--state", str(state)],
                    env,
                    work,
                )
                rows.append((name, workers, seconds, args.docs / seconds))
                print(f"done {name} workers={workers}", file=sys.stderr, flush=True)

    print(f"{'configuration':<24}{'docs':>9}{'seconds':>10}{'docs/s':>10}{'x classifier':>14}")
    print(f"{'classifier alone':<24}{args.docs:>9}{args.docs / alone:>10.1f}{alone:>10.1f}{1.0:>13.2f}x")
    for name, workers, seconds, rate in rows:
        label = f"rescore {name}, {workers} proc"
        print(f"{label:<24}{args.docs:>9}{seconds:>10.1f}{rate:>10.1f}{rate / alone:>13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
