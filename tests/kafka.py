"""Apache Kafka for the tests: the broker's jars from Maven Central, KRaft nodes as child processes.

``python -m tests.kafka fetch`` assembles the jars once into a cache outside the clone (Maven's own
``~/.m2`` keeps the downloads); ``KafkaCluster`` formats storage, starts one or three combined
broker+controller nodes on free loopback ports, waits until each serves, and stops them by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the log4j2 of that Kafka release: its POM leaves the logging jars out
CACHE = Path(os.environ.get("FINMON_KAFKA_CACHE", Path.home() / ".cache" / "finmon" / "kafka"))
READY_LINE = "Kafka Server started"

POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>finmon.tests</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-1.2-api</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = Console
appender.file.name = OUT
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""

BASE_PROPERTIES = {
    "process.roles": "broker,controller",
    "inter.broker.listener.name": "PLAINTEXT",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",  # lets a test outlast a short session timeout quickly
    "offsets.topic.num.partitions": "5",
    "transaction.state.log.num.partitions": "5",
    "log.cleaner.dedupe.buffer.size": str(2 << 20),  # the default 128 MiB would not fit a small heap
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
}
JVM = ["-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k"]


class KafkaError(Exception):
    """The broker could not be assembled or started."""


def lib_folder() -> Path:
    return CACHE / KAFKA_VERSION / "lib"


def fetch() -> Path:
    """The folder of the broker's jars, assembled with Maven on the first call and reused after it."""
    lib = lib_folder()
    if (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        return lib
    if not shutil.which("mvn") or not shutil.which("java"):
        raise KafkaError("Apache Kafka for the tests needs java (17+) and mvn: run tests/install-system-packages.sh")
    work = lib.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(POM)
    partial = work / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    goal = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"
    command = ["mvn", "-B", "-q", "-f", str(work / "pom.xml"), goal, "-DincludeScope=runtime"]
    result = subprocess.run([*command, f"-DoutputDirectory={partial}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise KafkaError(f"mvn could not assemble Kafka {KAFKA_VERSION}:\n{result.stdout[-3000:]}{result.stderr}")
    partial.rename(lib)
    return lib


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def java(lib: Path, *args: str, jvm: list[str] | None = None) -> list[str]:
    return ["java", *(jvm or []), "-cp", f"{lib}/*", *args]


ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-secret"  # the brokers' own principal, a super user
SCRAM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class Security:
    """How the clients' listener is secured: TLS with the broker's PEM bundle (key and certificate),
    optionally SASL/SCRAM-SHA-512 with users made at format time, and ACLs (StandardAuthorizer).
    Brokers talk among themselves on a SASL listener of their own as ``admin``."""

    protocol: str  # SSL | SASL_SSL
    keystore: Path
    users: tuple[tuple[str, str], ...] = ()
    acls: bool = False


@dataclass
class Node:
    """One combined broker+controller: its ports stay fixed across restarts, so its log dir stays valid."""

    node_id: int
    port: int
    controller_port: int
    folder: Path
    internal_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    host: str = "127.0.0.1"
    netns: str | None = None  # run inside this network namespace (ip netns exec)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class KafkaCluster:
    """``size`` KRaft nodes on loopback; a context manager, or start() and stop()."""

    folder: Path
    size: int = 1
    properties: dict[str, str] = field(default_factory=dict)
    security: Security | None = None
    nodes: list[Node] = field(default_factory=list)
    placement: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # node id -> (host, netns)

    @property
    def url(self) -> str:
        return ",".join(node.address for node in self.nodes)

    def _placed(self, node_id: int) -> dict[str, Any]:
        if node_id not in self.placement:
            return {}
        host, netns = self.placement[node_id]
        return {"host": host, "netns": netns}

    def node_properties(self, node: Node) -> dict[str, str]:
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        replicas = str(min(self.size, 3))
        isr = "2" if self.size >= 3 else "1"
        return {
            **BASE_PROPERTIES,
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{node.address},CONTROLLER://{node.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.address}",
            "log.dirs": str(node.folder / "data"),
            "default.replication.factor": replicas,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": isr,
            **self.secured(node),
            **self.properties,
        }

    def secured(self, node: Node) -> dict[str, str]:
        security = self.security
        if security is None:
            return {}
        login = "org.apache.kafka.common.security.scram.ScramLoginModule"
        properties = {
            "listeners": f"CLIENT://{node.address},INTERNAL://127.0.0.1:{node.internal_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"CLIENT://{node.address},INTERNAL://127.0.0.1:{node.internal_port}",
            "listener.security.protocol.map": (
                f"CLIENT:{security.protocol},INTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "inter.broker.listener.name": "INTERNAL",
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            f"listener.name.internal.{SCRAM.lower()}.sasl.jaas.config": (
                f'{login} required username="{ADMIN_USER}" password="{ADMIN_PASSWORD}";'
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(security.keystore),
        }
        if security.protocol.startswith("SASL"):  # the users are checked against the SCRAM credentials in metadata
            properties[f"listener.name.client.{SCRAM.lower()}.sasl.jaas.config"] = f"{login} required;"
        if security.acls:  # the controller listener is plaintext on loopback: its anonymous principal is the nodes
            properties["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            properties["super.users"] = f"User:{ADMIN_USER};User:ANONYMOUS"
        return properties

    def start(self, timeout: float = 90.0) -> KafkaCluster:
        lib = fetch()
        for attempt in range(3):  # a free port handed to java can be taken first: choose again
            self.nodes = [
                Node(i, free_port(), free_port(), self.folder / f"node{i}", free_port(), **self._placed(i))
                for i in range(1, self.size + 1)
            ]
            scram = []
            if self.security is not None:
                for name, password in [(ADMIN_USER, ADMIN_PASSWORD), *self.security.users]:
                    scram += ["--add-scram", f"{SCRAM}=[name={name},password={password}]"]
            cluster_id = subprocess.run(
                java(lib, "kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True, check=True
            ).stdout.strip()
            for node in self.nodes:
                shutil.rmtree(node.folder, ignore_errors=True)
                node.folder.mkdir(parents=True)
                config = node.folder / "server.properties"
                config.write_text("".join(f"{k}={v}\n" for k, v in self.node_properties(node).items()))
                (node.folder / "log4j2.properties").write_text(LOG4J2)
                subprocess.run(
                    java(lib, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), *scram),
                    capture_output=True,
                    check=True,
                )
            for node in self.nodes:
                self.launch(node)
            try:
                self.wait_ready(self.nodes, timeout)
                return self
            except KafkaError as error:
                self.stop()
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
        return self

    def launch(self, node: Node) -> None:
        args = [f"-Dlog4j2.configurationFile={node.folder / 'log4j2.properties'}", "kafka.Kafka"]
        command = java(fetch(), *args, str(node.folder / "server.properties"), jvm=JVM)
        if node.netns:
            command = ["ip", "netns", "exec", node.netns, *command]
        node.starts += 1
        output = node.log.open("ab")
        node.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        output.close()

    def wait_ready(self, nodes: list[Node], timeout: float = 90.0) -> None:
        """Until every node has logged that it started and accepts connections."""
        deadline = time.monotonic() + timeout
        waiting = list(nodes)
        while waiting and time.monotonic() < deadline:
            for node in list(waiting):
                assert node.process is not None
                text = node.log.read_text(errors="replace") if node.log.exists() else ""
                if node.process.poll() is not None:
                    raise KafkaError(f"Kafka node {node.node_id} exited at start:\n{text[-3000:]}")
                if text.count(READY_LINE) >= node.starts and accepts(node.port, node.host):
                    waiting.remove(node)
            time.sleep(0.2)
        if waiting:
            raise KafkaError(f"Kafka nodes {[n.node_id for n in waiting]} did not start within {timeout:.0f}s")

    def kill(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        """Signal one node and wait until its process has gone."""
        self.stop([node_id], sig)

    def restart(self, node_ids: list[int], timeout: float = 120.0) -> None:
        """Start stopped nodes again from their log directories."""
        nodes = [self.nodes[i - 1] for i in node_ids]
        for node in nodes:
            if not node.running:
                self.launch(node)
        self.wait_ready(nodes, timeout)

    def stop(self, node_ids: list[int] | None = None, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
        """Signal the nodes together (a lone survivor's controlled shutdown would wait for a quorum),
        then wait for each; one that outlives ``grace`` is killed."""
        nodes = [n for n in self.nodes if node_ids is None or n.node_id in node_ids]
        running = [n.process for n in nodes if n.process is not None and n.process.poll() is None]
        for process in running:
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m tests.kafka fetch")
    try:
        print(f"Apache Kafka {KAFKA_VERSION}: {fetch()}")
    except KafkaError as exc:
        sys.exit(str(exc))
