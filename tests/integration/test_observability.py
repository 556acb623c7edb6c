"""A real Prometheus scrapes a real worker; a real Alertmanager delivers a rule to a local receiver.

The binaries come from the Debian packages prometheus and prometheus-alertmanager, which the
test command installs; fixtures start them on free loopback ports with temporary storage and stop
them by PID. Grafana cannot be installed here: every dashboard query is run against Prometheus.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import ALERTMANAGER_V4_KEYS, Pipeline, Receiver, stop
from tests.kafka import free_port

pytestmark = pytest.mark.integration
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SUBSTITUTIONS = {"$__rate_interval": "30s", "$__range": "5m", "$__interval": "15s", "$topic": ".*"}


def binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(f"{names[0]} is not installed: run the README's test command (make test), which installs it")


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            queries += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel["targets"]]
    return queries


def annotation_queries() -> list[str]:
    boards = [json.loads(p.read_text()) for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")]
    return [a["expr"] for board in boards for a in board["annotations"]["list"]]


def test_promtool_checks_config_rules_and_rule_unit_tests() -> None:
    promtool = binary("promtool")
    for command in (
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        [promtool, "check", "rules", *map(str, sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")))],
        [promtool, "test", "rules", *map(str, sorted((DEPLOY / "prometheus" / "tests").glob("*.yml")))],
    ):
        result = run(command)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "WARNING" not in result.stdout + result.stderr


def test_amtool_checks_config_and_routes() -> None:
    amtool = binary("amtool")
    config = str(DEPLOY / "alertmanager" / "alertmanager.yml")
    assert run([amtool, "check-config", config]).returncode == 0
    for labels, receiver in (
        (["alertname=FinmonNegativeShareSpike", "topic=Earnings"], "finmon-desk"),
        (["alertname=FinmonWorkerDown", "instance=w1:6066"], "finmon-operators"),
        (["alertname=FinmonModelOnCPU", "instance=w1:6066"], "finmon-operators"),
    ):
        result = run(
            [amtool, "config", "routes", "test", f"--config.file={config}", f"--verify.receivers={receiver}", *labels]
        )
        assert result.returncode == 0, result.stdout + result.stderr


class Service:
    """A binary started on a loopback port with its own temporary folder, stopped by PID."""

    def __init__(self, command: list[str], port: int, log: Path) -> None:
        self.port = port
        self.process = subprocess.Popen(
            command, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.log = log

    def wait(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(self.log.read_text()[-2000:])

    def stop(self) -> None:
        stop(self.process)  # type: ignore[arg-type]


def prometheus_config(tmp_path: Path) -> dict[str, Any]:
    """deploy/'s Prometheus configuration for a test: scraped and evaluated every second, the shipped
    rules copied to TMP_PATH/rules with the alerts' ``for`` at 0 s (the same expressions, without the
    waiting). The caller points the scrape jobs at its processes and writes TMP_PATH/prometheus.yml."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(DEPLOY / "prometheus" / "rules" / "finmon-recording.yml", rules)
    alerting = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "finmon-alerts.yml").read_text())
    for rule in alerting["groups"][0]["rules"]:
        rule["for"] = "0s"
    (rules / "finmon-alerts.yml").write_text(yaml.safe_dump(alerting))
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules / "*.yml")]
    return config


def start_prometheus(tmp_path: Path, port: int) -> Service:
    """A real Prometheus on TMP_PATH/prometheus.yml, listening on loopback ``port``."""
    return Service(
        [
            binary("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port,
        tmp_path / "prom.log",
    )


@pytest.fixture
def monitored(pipeline: Pipeline, tmp_path: Path) -> Iterator[tuple[Pipeline, Service, Receiver]]:
    """Worker (asking for CUDA on this CPU machine) + feed + Prometheus + Alertmanager + webhook receiver."""
    receiver = Receiver().__enter__()
    pipeline.extra_env.update(
        {
            "FINMON_MODEL__DEVICE": "cuda",  # this machine's onnxruntime has no CUDA: the CPU-fallback rule fires
            "FINMON_WINDOWS__TUMBLING_SECONDS": "5",
            "FINMON_WINDOWS__HOPPING_SECONDS": "10",
            "FINMON_WINDOWS__HOPPING_STEP_SECONDS": "5",
            "FINMON_WINDOWS__GRACE_SECONDS": "1",
            "FINMON_ALERTS__TARGETS": json.dumps([{"url": receiver.url, "name": "desk"}]),
        }
    )
    am_port, prom_port = free_port(), free_port()
    am_config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for route in [am_config["route"], *am_config["route"]["routes"]]:
        route.update({"group_wait": "1s", "group_interval": "2s"})
    for entry in am_config["receivers"]:
        entry["webhook_configs"][0]["url"] = receiver.url
    (tmp_path / "am.yml").write_text(yaml.safe_dump(am_config))
    prom_config = prometheus_config(tmp_path)
    prom_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
    prom_config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{pipeline.web_port}"]
    prom_config["scrape_configs"] = prom_config["scrape_configs"][:1]  # the worker's job; no ingester runs here
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    with contextlib.ExitStack() as cleanup:  # every process is stopped, even if stopping another fails
        cleanup.callback(receiver.__exit__)
        alertmanager = Service(
            [
                binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={tmp_path / 'am.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            am_port,
            tmp_path / "am.log",
        )
        cleanup.callback(alertmanager.stop)
        prometheus = start_prometheus(tmp_path, prom_port)
        cleanup.callback(prometheus.stop)
        worker = pipeline.start_worker()
        cleanup.callback(stop, worker)
        alertmanager.wait("/-/ready")
        prometheus.wait("/-/ready")
        pipeline.wait_ready(worker)
        feed = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "feed", "--rate", "20", "--count", "600"],
            env=pipeline.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        cleanup.callback(stop, feed)
        yield pipeline, prometheus, receiver


def query(prometheus: Service, expr: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{prometheus.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


def test_dashboards_rules_and_alertmanager_against_a_live_worker(
    monitored: tuple[Pipeline, Service, Receiver],
) -> None:
    pipeline, prometheus, receiver = monitored
    queries = dashboard_queries()
    recorded = [
        r["record"]
        for group in yaml.safe_load((DEPLOY / "prometheus" / "rules" / "finmon-recording.yml").read_text())["groups"]
        for r in group["rules"]
    ]

    def answers() -> dict[str, Any]:
        results = {}
        for name, expr in queries:
            for token, value in SUBSTITUTIONS.items():
                expr = expr.replace(token, value)
            results[name] = query(prometheus, expr)
        for name in recorded:
            results[f"recording rule {name}"] = query(prometheus, name)
        return results

    deadline = time.monotonic() + 90
    results = answers()
    while time.monotonic() < deadline and not all(r.get("data", {}).get("result") for r in results.values()):
        time.sleep(3)
        results = answers()
    failed = {name: r for name, r in results.items() if r.get("status") != "success" or not r["data"]["result"]}
    assert not failed, json.dumps(failed, indent=1)[:3000]
    for expr in annotation_queries():  # events only when alerts fire: they must parse and run
        assert query(prometheus, expr)["status"] == "success"

    metrics_text = pipeline.metrics()
    check = subprocess.run(
        [binary("promtool"), "check", "metrics"],
        input=metrics_text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr
    assert re.search(
        r'finmon_model_info\{precision="int8",provider="CPUExecutionProvider",version="tiny-1"\} 1', metrics_text
    )

    def alertmanager_posted(requests: list[dict[str, Any]]) -> bool:
        return any(
            r["body"].get("version") == "4"
            and any(a["labels"].get("alertname") == "FinmonModelOnCPU" for a in r["body"].get("alerts", []))
            for r in requests
        )

    assert receiver.wait_for(alertmanager_posted, timeout=60), [r["body"] for r in receiver.requests][:3]
    payload = next(r["body"] for r in receiver.requests if r["body"].get("version") == "4")
    assert set(payload) >= ALERTMANAGER_V4_KEYS
    assert payload["receiver"] == "finmon-operators" and payload["status"] == "firing"
    assert set(payload["alerts"][0]) >= {"labels", "annotations", "startsAt", "endsAt", "fingerprint"}
