"""Streaming commands: worker, feed, demo."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from monitor.cli import existing_file, positive_int, positive_number
from monitor.errors import ConfigError, UsageError
from monitor.feed import LANGUAGES
from monitor.settings import Settings

log = logging.getLogger("finmon")
PREPARE_SECONDS = 60.0  # how long topic checks retry while a broker of the cluster does not answer
FAUST_STOP_SECONDS = 5.0  # what faust's own shutdown may take once finmon's stages and lanes have stopped


def require_broker(settings: Settings) -> None:
    """A broker is configured and lets finmon in (TLS verified, SASL login accepted), or one line says why not."""
    from streams.cluster.preflight import check_cluster

    if not settings.kafka.bootstrap_servers:
        raise UsageError("no broker: set FINMON_KAFKA__BOOTSTRAP_SERVERS, or run `finmon demo` for an embedded one")
    check_cluster(settings.kafka)


def state_folder(path: str) -> None:
    """Create the worker's state folder (relative to the working directory), or say in one line why not."""
    from pathlib import Path

    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the state folder {path!r} ({exc.strerror}): set FINMON_STREAM__DATA_DIR"
        ) from exc


def run_app(app: Any, verbose: bool, name: str) -> None:
    """Run a faust app in the foreground until SIGINT/SIGTERM, then stop within the stop deadline."""
    import asyncio

    import faust

    from monitor.stopping import StopDeadline

    deadline = StopDeadline(name)

    class Worker(faust.Worker):  # type: ignore[misc]
        stopping = False

        def _schedule_shutdown(self, signum: Any) -> None:
            """finmon's own stages and delivery lanes stop first, each within its own limits, saying
            what they leave; then faust's shutdown, whose clients can wait on a frozen broker for
            longer than the deadline allows."""
            deadline.arm()
            if self.stopping:
                return
            self.stopping = True
            shutdown = super()._schedule_shutdown

            async def ours_first() -> None:
                stops = await asyncio.gather(*(s.stop() for s in app._extra_services), return_exceptions=True)
                for service, error in zip(app._extra_services, stops, strict=True):
                    if isinstance(error, BaseException):
                        log.warning("%s did not stop cleanly: %r", type(service).__name__, error)
                deadline.tighten(FAUST_STOP_SECONDS)  # what is left is faust's, which holds nothing of ours
                shutdown(signum)

            self.loop.create_task(ours_first())

    worker = Worker(app, loglevel="INFO" if verbose else "WARNING", quiet=True)
    worker.spinner = None  # a terminal spinner writes escape codes into a log file
    worker.execute_from_commandline()


def prepare_topics(settings: Settings, worker: bool = False) -> None:
    """Create the pipeline's missing topics (and the worker's own), then refuse in one line if an ACL
    the worker needs is missing."""
    import time

    from kafka.errors import KafkaConnectionError, KafkaError

    from streams.cluster.preflight import check_permissions
    from streams.cluster.topics import ensure_topics
    from streams.worker.stage import changelog_topic, trend_events_topic

    internal = {
        trend_events_topic(settings.stream): {"retention.ms": str(24 * 3600 * 1000)},
        changelog_topic(settings.stream): {"cleanup.policy": "compact"},
    }
    deadline = time.monotonic() + PREPARE_SECONDS
    while True:
        try:
            created = ensure_topics(settings.kafka, settings.topics, internal if worker else None)
            if created:
                print(f"finmon: created topics {', '.join(created)}", flush=True)
            check_permissions(settings.kafka, settings.topics, settings.stream)
            return
        except KafkaError as exc:  # a broker restarting between the preflight and here: the others answer soon
            if not (exc.retriable or isinstance(exc, KafkaConnectionError)) or time.monotonic() > deadline:
                raise ConfigError(f"the cluster did not answer while preparing topics: {exc}") from exc
            log.warning("preparing topics: %s; trying again", exc)
            time.sleep(1.0)


def worker(args: argparse.Namespace, settings: Settings) -> int:
    """Load the model first (a bad model refuses to start), then run the faust worker."""
    from prometheus_client import CollectorRegistry

    from models.routing import Router
    from streams.worker.app import create_worker
    from streams.worker.metrics import WorkerMetrics

    state_folder(settings.stream.data_dir)
    require_broker(settings)
    classifier = Router.from_settings(settings.model)
    info = classifier.describe()
    print(f"finmon worker: model {info['version']} on {info['provider']} ({info['precision']})", flush=True)
    prepare_topics(settings, worker=True)
    metrics = WorkerMetrics(CollectorRegistry())
    app = create_worker(
        settings.kafka,
        settings.topics,
        settings.stream,
        settings.windows,
        classifier,
        metrics,
        alerting=settings.alerts,
    )
    web = f"http://{settings.stream.web_host}:{settings.stream.web_port}"
    print(f"finmon worker: metrics {web}/metrics, health {web}/health", flush=True)
    run_app(app, args.verbose, "worker")
    return 0


def dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """The dashboard service: reads the topics outside any consumer group, serves the page and its API."""
    from aiohttp import web

    from monitor.web.access import is_loopback
    from monitor.web.server import AccessLog, create_dashboard

    host = settings.web.host
    if not is_loopback(host) and not settings.web.authenticated:
        raise UsageError(
            f"the dashboard serves {host} beyond loopback only with logins: set FINMON_WEB__TOKENS_FILE "
            "(finmon analysts add NAME), FINMON_WEB__PROXY_USER_HEADER with FINMON_WEB__TRUSTED_PROXIES, "
            "or FINMON_WEB__TOKEN"
        )
    ssl_context = tls_context(settings)
    app = create_dashboard(settings)  # reads the tokens file: a broken one is named before anything starts
    require_broker(settings)
    where = f"{'https' if ssl_context else 'http'}://{host}:{settings.web.port}"
    print(f"finmon dashboard: {where}/dashboard (health {where}/health)", flush=True)
    try:
        web.run_app(
            app, host=host, port=settings.web.port, print=None, ssl_context=ssl_context,
            access_log_class=AccessLog, shutdown_timeout=5.0,
        )  # fmt: skip
    except OSError as exc:
        raise UsageError(f"cannot serve on {host}:{settings.web.port} ({exc.strerror}): set FINMON_WEB__PORT") from exc
    return 0


def tls_context(settings: Settings) -> Any:
    """The dashboard's HTTPS context, or None; a certificate that cannot be loaded is named in one line."""
    import ssl

    web = settings.web
    if web.tls_certfile is None or web.tls_keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(web.tls_certfile, web.tls_keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the dashboard's certificate {str(web.tls_certfile)!r} with key "
            f"{str(web.tls_keyfile)!r}: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    return context


def alerts(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver alerts only (run workers without targets when delivery runs here)."""
    from prometheus_client import CollectorRegistry

    from streams.worker.alerting import add_delivery
    from streams.worker.app import base_app
    from streams.worker.health import serve_metrics
    from streams.worker.metrics import WorkerMetrics

    state_folder(settings.stream.data_dir)
    require_broker(settings)
    if not settings.alerts.targets:
        raise UsageError("no webhook targets: set FINMON_ALERTS__TARGETS to a JSON list of {url, format, secret}")
    prepare_topics(settings)
    metrics = WorkerMetrics(CollectorRegistry())
    app = base_app(settings.kafka, settings.topics, settings.stream, f"{settings.stream.app_id}-alerts")
    add_delivery(app, settings.kafka, settings.stream, settings.topics, settings.alerts, metrics)
    serve_metrics(app, metrics)
    names = ", ".join(t.label for t in settings.alerts.targets)
    print(f"finmon alerts: delivering {settings.topics.alerts} to {names}", flush=True)
    run_app(app, args.verbose, "alerts")
    return 0


def feed(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.feed import FeedOptions, run_feed

    require_broker(settings)
    options = FeedOptions(
        rate=args.rate,
        count=args.count,
        replay=args.replay,
        seed=args.seed,
        surge_key=args.surge,
        surge_at=args.surge_at,
        surge_seconds=args.surge_seconds,
        lang=args.lang,
    )
    sent = run_feed(settings.kafka, settings.topics.news, options)
    print(f"finmon feed: sent {sent} documents to {settings.topics.news}")
    return 0


def demo(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.demo import run_demo

    return run_demo(settings, duration=args.duration, rate=args.rate, lang=args.lang)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run the streaming worker against a Kafka cluster")
    p.set_defaults(handler=worker)
    p = sub.add_parser("dashboard", help="serve the dashboard (reads the topics; run one or more beside the workers)")
    p.set_defaults(handler=dashboard)
    p = sub.add_parser("alerts", help="deliver alerts to the webhook targets (without scoring)")
    p.set_defaults(handler=alerts)
    p = sub.add_parser("feed", help="send a synthetic stream or replay a file onto the news topic")
    p.add_argument("--rate", type=positive_number, default=20.0, help="documents per second")
    p.add_argument("--count", type=positive_int, help="stop after this many documents (default: endless)")
    p.add_argument("--replay", type=existing_file, help="CSV/JSONL file to replay instead of synthetic news")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--surge", help="inject a negative surge on this topic name or ticker")
    p.add_argument("--surge-at", type=float, default=30.0, help="seconds after start")
    p.add_argument("--surge-seconds", type=float, default=60.0)
    p.add_argument(
        "--lang", choices=LANGUAGES, default="en", help="language of the synthetic stories (mixed: 30%% Chinese)"
    )
    p.set_defaults(handler=feed)
    p = sub.add_parser("demo", help="embedded broker + worker + feed + live terminal view")
    p.add_argument("--duration", type=positive_number, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--rate", type=positive_number, default=20.0, help="feed documents per second")
    p.add_argument("--lang", choices=LANGUAGES, default="mixed", help="language of the demo's stories")
    p.set_defaults(handler=demo)


REGISTER = [register]
