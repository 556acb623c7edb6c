"""The embedded broker's cost per request as a function of the records it holds.

Tansu's memory store keeps every record and never expires any; this measures what that does to
the cost of the requests a worker makes all the time. A probe produces one small record to a
topic of its own and fetches it back, many times; its broker CPU and wall time per round trip
are measured with the broker empty (the baseline, same run) and again after each fill of a
separate topic. A broker whose request cost does not depend on what it holds shows ratios
near 1.00x.

    python benchmarks/broker.py [--fills 4] [--fill 100000] [--probes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soak import cpu_seconds, rss_mib  # benchmarks/soak.py, beside this file

from monitor.embedded_broker import EmbeddedBroker

PARTITIONS = 4


async def probe(url: str, producer: AIOKafkaProducer, pid: int, count: int) -> tuple[float, float]:
    """Broker CPU ms and wall ms per produce-and-fetch round trip on the probe topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=url, group_id=None, fetch_max_wait_ms=10)
    await consumer.start()
    tp = TopicPartition("probe", 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    cpu, began = cpu_seconds(pid), time.perf_counter()
    try:
        for _ in range(count):
            await producer.send_and_wait("probe", b"p" * 200, partition=0)
            await consumer.getmany(tp, timeout_ms=2000)
    finally:
        await consumer.stop()
    return (cpu_seconds(pid) - cpu) * 1000 / count, (time.perf_counter() - began) * 1000 / count


async def fill(producer: AIOKafkaProducer, count: int, start: int) -> None:
    """``count`` records of 500 bytes in batches of about 20, as a busy worker writes them."""
    for first in range(start, start + count, 20):
        sent = [await producer.send("fill", b"f" * 500, partition=n % PARTITIONS) for n in range(first, first + 20)]
        await asyncio.gather(*sent)


async def measure(url: str, pid: int, fills: int, size: int, probes: int) -> list[tuple[int, float, float, float]]:
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=0)
    await producer.start()
    rows = []
    try:
        held = 0
        for step in range(fills + 1):
            if step:
                await fill(producer, size, held)
                held += size
            cpu_ms, wall_ms = await probe(url, producer, pid, probes)
            rows.append((held, cpu_ms, wall_ms, rss_mib(pid)))
            print(f"held {held}: {cpu_ms:.2f} ms CPU, {wall_ms:.2f} ms wall", file=sys.stderr, flush=True)
    finally:
        await producer.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fills", type=int, default=4, help="how many times to add --fill records")
    parser.add_argument("--fill", type=int, default=100_000, help="records added per fill")
    parser.add_argument("--probes", type=int, default=300, help="round trips per measurement")
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        assert broker.process is not None
        rows = asyncio.run(measure(broker.url, broker.process.pid, args.fills, args.fill, args.probes))
    base_cpu, base_wall = rows[0][1], rows[0][2]
    print(f"{'records held':>13}{'broker RSS MiB':>16}{'CPU ms/req':>12}{'x empty':>9}", end="")
    print(f"{'wall ms/req':>13}{'x empty':>9}")
    for held, cpu_ms, wall_ms, rss in rows:
        ratios = f"{cpu_ms:>12.2f}{cpu_ms / base_cpu:>8.2f}x{wall_ms:>13.2f}{wall_ms / base_wall:>8.2f}x"
        print(f"{held:>13}{rss:>16.0f}{ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
