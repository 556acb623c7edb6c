"""``finmon demo``: embedded broker, topics, worker, feed with a surge, and a live terminal view.

Everything it starts it stops on Ctrl-C (or after ``--duration``), leaving no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from monitor.embedded_broker import EmbeddedBroker, free_port
from monitor.errors import ConfigError
from monitor.feed import FeedOptions, run_feed
from monitor.receiver import AlertInbox
from monitor.settings import Settings
from streams.cluster.topics import client_options, ensure_topics
from streams.core.records import Trend
from streams.settings import KafkaSettings

SURGE_TICKER = "TSLA"
SURGE_AT = 100.0
DEMO_WINDOWS = {"tumbling_seconds": 20, "hopping_seconds": 300, "hopping_step_seconds": 20}


def demo_windows(settings: Settings) -> dict[str, int]:
    """Window sizes for the demo: compressed unless the user configured them."""
    chosen = settings.windows.model_fields_set & set(DEMO_WINDOWS)
    return {name: (getattr(settings.windows, name) if chosen else value) for name, value in DEMO_WINDOWS.items()}


@dataclass
class View:
    """What the terminal shows: latest windows per key, counters, rates."""

    windows: dict[tuple[str, str, str], Trend] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    rate: float = 0.0
    last: tuple[float, float] | None = None

    def add_trend(self, record: Trend) -> None:
        key = (record.scope, record.key, record.window)
        if key not in self.windows or record.window_start >= self.windows[key].window_start:
            self.windows[key] = record

    def current(self, scope: str, window: str) -> list[Trend]:
        """Each key's latest window of ``scope``, if it is one of the two newest windows seen and has stories:
        a key that went quiet drops off instead of standing as the latest for minutes."""
        latest = [r for (s, _, w), r in self.windows.items() if s == scope and w == window]
        recent = sorted({r.window_start for (s, _, w), r in self.windows.items() if w == window})[-2:]
        return [r for r in latest if r.total and r.window_start in recent]

    def add_metrics(self, text: str, now: float) -> None:
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
        self.counters = totals
        scored = totals.get("finmon_documents_scored_total", 0.0)
        if self.last is not None and now > self.last[0]:
            self.rate = (scored - self.last[1]) / (now - self.last[0])
        self.last = (now, scored)

    def render(self, urls: str, window: str) -> str:
        c = self.counters
        lines = [
            f"finmon demo  {urls}",
            f"consumed {c.get('finmon_documents_consumed_total', 0):.0f}  "
            f"scored {c.get('finmon_documents_scored_total', 0):.0f}  "
            f"dead-lettered {c.get('finmon_documents_dead_lettered_total', 0):.0f}  ({self.rate:.1f} docs/s)",
            f"latest {window} windows by topic: negative / neutral / positive, negative share",
        ]
        rows = sorted(self.current("topic", window), key=lambda r: -r.negative_share)
        for r in rows[:12]:
            n = r.counts
            lines.append(
                f"  {r.key[:28]:<28} {r.window_start[11:16]}  {n.negative:>4} {n.neutral:>4} "
                f"{n.positive:>4}  {r.negative_share:>5.0%}{'  final' if r.final else ''}"
            )
        tickers = sorted(self.current("ticker", window), key=lambda r: (-r.negative_share, -r.total))[:5]
        if tickers:
            lines.append(
                "most negative tickers: " + ", ".join(f"{r.key} {r.negative_share:.0%} of {r.total}" for r in tickers)
            )
        return "\n".join(lines)


def worker_env(settings: Settings, url: str, embedded: bool, inbox_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["FINMON_KAFKA__BOOTSTRAP_SERVERS"] = url
    if not settings.alerts.targets:
        env["FINMON_ALERTS__TARGETS"] = json.dumps([{"url": inbox_url, "name": "demo-inbox"}])
    env.setdefault("FINMON_WINDOWS__GRACE_SECONDS", "5")
    for name, value in demo_windows(settings).items():  # compressed time: the surge alerts within minutes
        env[f"FINMON_WINDOWS__{name.upper()}"] = str(value)
    if embedded:  # what the embedded broker needs, and only the demo runs on it
        env.setdefault("FINMON_STREAM__SESSION_TIMEOUT", "6")  # it makes a join wait half the session timeout
        env.setdefault("FINMON_STREAM__HEARTBEAT_INTERVAL", "2")
        env.setdefault("FINMON_STREAM__IDEMPOTENT_PRODUCER", "false")  # it grants no producer ids
    return env


async def watch(kafka: KafkaSettings, topic: str, view: View, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(topic, group_id=None, auto_offset_reset="earliest", **client_options(kafka))  # type: ignore[arg-type]
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        view.add_trend(Trend.decode(message.value))
    finally:
        await consumer.stop()


def scrape(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return str(response.read().decode("utf-8"))
    except OSError:
        return None


async def show(
    view: View, inbox: AlertInbox, settings: Settings, metrics_url: str, urls: str, stop: asyncio.Event
) -> None:
    window = f"{demo_windows(settings)['tumbling_seconds']}s"
    tty = sys.stdout.isatty()
    while not stop.is_set():
        text = await asyncio.to_thread(scrape, metrics_url)
        if text:
            view.add_metrics(text, time.monotonic())
        screen = view.render(urls, window) + "\n" + "\n".join(inbox.render())
        print(("\x1b[2J\x1b[H" + screen) if tty else screen + "\n", flush=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2.0)


async def demo_loop(
    settings: Settings,
    url: str,
    metrics_url: str,
    urls: str,
    duration: float | None,
    rate: float,
    inbox: AlertInbox,
    inbox_port: int,
    children: dict[str, subprocess.Popen[bytes]],
    lang: str = "mixed",
) -> None:
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": url})
    await asyncio.to_thread(ensure_topics, kafka, settings.topics)
    await inbox.start("127.0.0.1", inbox_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    view = View()
    options = FeedOptions(rate=rate, surge_key=SURGE_TICKER, surge_at=SURGE_AT, surge_seconds=120.0, lang=lang)
    feed_stop = threading.Event()
    tasks = [
        *(asyncio.create_task(watch_child(child, stop)) for child in children.values()),
        asyncio.create_task(asyncio.to_thread(run_feed, kafka, settings.topics.news, options, feed_stop)),
        asyncio.create_task(watch(kafka, settings.topics.trends, view, stop)),
        asyncio.create_task(show(view, inbox, settings, metrics_url, urls, stop)),
    ]
    if duration is not None:
        loop.call_later(duration, stop.set)
    await stop.wait()
    feed_stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await inbox.stop()


async def watch_child(process: subprocess.Popen[bytes], stop: asyncio.Event) -> None:
    """A child that exits ends the demo: its status is reported, never hidden behind a view of nothing."""
    while process.poll() is None and not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    stop.set()


def last_error(log: Path) -> str:
    """The child's own last word: the last line of its log that is not blank."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(its log is empty)"


def check_port(host: str, port: int) -> None:
    """A busy web port is named with the setting that changes it, before anything starts."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"port {port} on {host} is in use ({exc.strerror}): set FINMON_STREAM__WEB_PORT to a free port"
            ) from exc


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def start_child(command: str, env: dict[str, str], state: Path) -> subprocess.Popen[bytes]:
    """``finmon COMMAND`` as a child, its output in STATE/COMMAND.log (this run's only)."""
    with (state / f"{command}.log").open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", command], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )


def demo_login(settings: Settings, state: Path, env: dict[str, str]) -> str:
    """Where no logins are configured, a token for this run's analyst (the user's login name), kept
    hashed in STATE/analysts: the demo's link signs in once, as Jupyter's does, and reviews are named."""
    import getpass
    import re

    from monitor.web.access import new_token, write_analyst

    if settings.web.authenticated:
        return ""
    try:
        name = re.sub(r"[^\w.@+-]", "", getpass.getuser())[:100] or "analyst"
    except (KeyError, OSError):
        name = "analyst"
    token, path = new_token(), state / "analysts"
    write_analyst(path, name, token)
    env["FINMON_WEB__TOKENS_FILE"] = str(path.resolve())
    return f"?token={token}"


def run_demo(settings: Settings, duration: float | None = None, rate: float = 20.0, lang: str = "mixed") -> int:
    for host, chosen in ((settings.stream.web_host, settings.stream.web_port), (settings.web.host, settings.web.port)):
        if chosen:
            check_port(host, chosen)
    state = Path(settings.stream.data_dir)
    state.mkdir(parents=True, exist_ok=True)
    embedded = not settings.kafka.bootstrap_servers
    broker = EmbeddedBroker(log_file=state / "broker.log").start() if embedded else None
    url = broker.url if broker else str(settings.kafka.bootstrap_servers)
    port, board_port = settings.stream.web_port or free_port(), settings.web.port or free_port()
    inbox, inbox_port = AlertInbox(), free_port()
    env = worker_env(settings, url, embedded, f"http://127.0.0.1:{inbox_port}/alerts")
    env["FINMON_STREAM__WEB_PORT"], env["FINMON_WEB__PORT"] = str(port), str(board_port)
    web = f"http://{settings.stream.web_host}:{port}"
    login = demo_login(settings, state, env) if settings.web.enabled else ""
    urls = f"dashboard http://{settings.web.host}:{board_port}/dashboard{login}  " if settings.web.enabled else ""
    urls += f"metrics {web}/metrics  broker {url}"
    print(f"finmon demo: {urls}", flush=True)
    children = {"worker": start_child("worker", env, state)}
    if settings.web.enabled:
        children["dashboard"] = start_child("dashboard", env, state)
    pids = ", ".join(f"{name} pid {child.pid}" for name, child in children.items())
    print(
        f"finmon demo: broker pid {broker.process.pid if broker and broker.process else '-'}, {pids}; logs in {state}"
    )
    try:
        loop = demo_loop(settings, url, f"{web}/metrics", urls, duration, rate, inbox, inbox_port, children, lang)
        asyncio.run(loop)
    finally:
        died = {name: child.poll() for name, child in children.items() if child.poll() is not None}
        for child in children.values():
            stop_process(child)
        if broker:
            broker.stop()
    for name, status in died.items():
        why = last_error(state / f"{name}.log")
        print(f"finmon demo: error: the {name} exited with status {status}: {why}", file=sys.stderr, flush=True)
    if died:
        return 1
    print("finmon demo: stopped", flush=True)
    return 0
