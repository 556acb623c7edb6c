"""The embedded broker's cost of reading at the end of a partition, by what the partition holds.

Tansu's memory store keeps every record and never expires any. A consumer that follows a
topic asks, again and again, for the records just written at the end of a partition; this
measures what one such round trip (produce one record, fetch it back) costs the broker as the
partition fills, once for a partition written one record per batch (a producer that does not
linger) and once for the same records written a hundred per batch. The baseline is the same
round trip on the empty partition, in the same run. A broker whose cost does not depend on what
a partition holds shows ratios near 1.00x.

    python benchmarks/broker.py [--steps 5000 10000 20000] [--probes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brokers import cpu_seconds, rss_mib  # benchmarks/brokers.py, beside this file

from monitor.embedded_broker import EmbeddedBroker

RECORD = b"f" * 500
BATCHES = (1, 100)


async def round_trips(url: str, producer: AIOKafkaProducer, topic: str, pid: int, count: int) -> tuple[float, float]:
    """Broker CPU ms and wall ms per produce-and-fetch round trip at the end of ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=url, group_id=None, fetch_max_wait_ms=10)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    cpu, began = cpu_seconds(pid), time.perf_counter()
    try:
        for _ in range(count):
            await producer.send_and_wait(topic, b"p" * 200, partition=0)
            await consumer.getmany(tp, timeout_ms=2000)
    finally:
        await consumer.stop()
    return (cpu_seconds(pid) - cpu) * 1000 / count, (time.perf_counter() - began) * 1000 / count


async def fill(url: str, topic: str, count: int, per_batch: int) -> None:
    """``count`` records of 500 bytes, ``per_batch`` to a batch."""
    size = 512 if per_batch == 1 else 1 << 20  # a 500-byte record fills a 512-byte batch on its own
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=0, max_batch_size=size)
    await producer.start()
    try:
        step = per_batch if per_batch > 1 else 200
        for _ in range(0, count, step):
            sent = [await producer.send(topic, RECORD, partition=0) for _ in range(step)]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def measure(url: str, pid: int, steps: list[int], probes: int) -> dict[int, list[tuple[int, float, float]]]:
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=0)
    await producer.start()
    rows: dict[int, list[tuple[int, float, float]]] = {}
    try:
        for per_batch in BATCHES:
            topic, held = f"fill-{per_batch}", 0
            rows[per_batch] = []
            for target in [0, *steps]:
                await fill(url, topic, target - held, per_batch)
                held = target
                cpu_ms, wall_ms = await round_trips(url, producer, topic, pid, probes)
                rows[per_batch].append((held, cpu_ms, wall_ms))
                print(f"{per_batch}/batch, {held} held: {cpu_ms:.2f} ms CPU", file=sys.stderr, flush=True)
    finally:
        await producer.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[5_000, 10_000, 20_000], help="records held")
    parser.add_argument("--probes", type=int, default=50, help="round trips per measurement")
    args = parser.parse_args()
    if args.steps != sorted(args.steps) or args.steps[0] <= 0:
        parser.error("--steps must be positive and increasing")
    with EmbeddedBroker() as broker:
        assert broker.process is not None
        rows = asyncio.run(measure(broker.url, broker.process.pid, args.steps, args.probes))
        rss = rss_mib(broker.process.pid)
    header = "".join(f"{f'{n}/batch CPU ms':>16}{'x empty':>9}{'wall ms':>10}" for n in BATCHES)
    print(f"round trip at the end of one partition; broker RSS at the end {rss:.0f} MiB")
    print(f"{'records held':>13}{header}")
    for index, (held, *_) in enumerate(rows[BATCHES[0]]):
        line = f"{held:>13}"
        for per_batch in BATCHES:
            _, cpu_ms, wall_ms = rows[per_batch][index]
            line += f"{cpu_ms:>16.2f}{cpu_ms / rows[per_batch][0][1]:>8.2f}x{wall_ms:>10.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
