"""What the benchmarks share about brokers: a fresh one of either kind, and a process's CPU and memory."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.embedded_broker import EmbeddedBroker
from tests.kafka import KafkaCluster


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def broker_of(kind: str, work: Path) -> Iterator[tuple[str, int]]:
    """(bootstrap address, broker PID) of a fresh single-node Apache Kafka or embedded broker."""
    if kind == "kafka":
        with KafkaCluster(work / "kafka") as cluster:
            assert cluster.nodes[0].process is not None
            yield cluster.url, cluster.nodes[0].process.pid
        return
    with EmbeddedBroker(log_file=work / "broker.log") as broker:
        assert broker.process is not None
        yield broker.url, broker.process.pid
