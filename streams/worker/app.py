"""The Faust worker, assembled from one small factory per stage around the plain pipeline code.

news --score--> news.scored (+ news.dlq) and <app>-trend-events (packed per partition per batch)
--window (state in memory, <app>-windows-changelog per checkpoint)--> sentiment.trends
--detect--> alerts --deliver--> webhooks (+ alerts.dlq)

The two high-rate stages consume in batches beneath faust (``streams.worker.pipe``), in the
consumer groups ``<app>`` (news) and ``<app>-windows``; faust runs the app (web, the detection and
delivery agents) as ``<app>-alerting``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as kafka_driver

from alerts.settings import AlertSettings
from models.routing import Router
from models.runtime import Classifier
from streams.cluster.topics import tls_context
from streams.core.companies import linker_for
from streams.core.decode import Limits
from streams.core.windows import window_specs
from streams.settings import KafkaSettings, StreamSettings, TopicSettings, WindowSettings
from streams.worker.alerting import add_delivery, add_detection
from streams.worker.health import add_health, serve_metrics
from streams.worker.metrics import WorkerMetrics
from streams.worker.pipe import Pipe
from streams.worker.score import Scorer, ScoreStage
from streams.worker.stage import Wiring
from streams.worker.trends import WindowStage


def broker_url(kafka: KafkaSettings) -> str:
    servers = (kafka.bootstrap_servers or "").replace(" ", "")
    return ";".join(f"kafka://{server}" for server in servers.split(",") if server)


def credentials(kafka: KafkaSettings) -> Any:
    """SASL/TLS options passed through to the Kafka client; None for plaintext."""
    context = tls_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context else None


class IdempotentProducer(kafka_driver.Producer):
    """faust asks aiokafka for idempotence only inside transactions; finmon wants it on every send."""

    def _settings_extra(self) -> Any:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class IdempotentTransport(kafka_driver.Transport):
    Producer = IdempotentProducer


class WorkerApp(faust.App):
    """A faust App whose producer is idempotent unless ``idempotent=False``."""

    def __init__(self, *args: Any, idempotent: bool = True, **options: Any) -> None:
        self.idempotent = idempotent
        super().__init__(*args, **options)

    def _new_transport(self) -> Any:
        if not self.idempotent:
            return super()._new_transport()
        return IdempotentTransport(self.conf.broker_consumer, self)


def base_app(kafka: KafkaSettings, topics: TopicSettings, stream: StreamSettings, app_id: str) -> faust.App:
    """A faust App connected by the settings, with /metrics-friendly web settings and no autodiscovery.

    faust's own part (spike detection) runs at least once whatever the stages do: alerts are
    idempotent by alert_id, and a fenced transactional producer would crash faust's whole worker."""
    return WorkerApp(
        app_id,
        idempotent=stream.idempotent_producer,
        processing_guarantee="at_least_once",
        broker=broker_url(kafka),
        broker_credentials=credentials(kafka),
        store="memory://",
        topic_partitions=topics.partitions,
        topic_replication_factor=topics.replication,
        broker_session_timeout=stream.session_timeout,
        broker_heartbeat_interval=stream.heartbeat_interval,
        producer_linger=stream.producer_linger,
        web_bind=stream.web_host,
        web_port=stream.web_port,
        web_host=stream.web_host,
        datadir=stream.data_dir,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        web_in_thread=False,
    )


def create_worker(
    kafka: KafkaSettings,
    topics: TopicSettings,
    stream: StreamSettings,
    windows: WindowSettings,
    classifier: Router | Classifier,
    metrics: WorkerMetrics,
    clock: Callable[[], float] = time.time,
    alerting: AlertSettings | None = None,
) -> faust.App:
    """A configured faust App, one small factory per stage; run it with faust.Worker."""
    w = Wiring(base_app(kafka, topics, stream, f"{stream.app_id}-alerting"), topics, stream, windows, metrics, clock,
               kafka=kafka)  # fmt: skip
    info = classifier.describe()
    for model in classifier.classifiers if isinstance(classifier, Router) else [classifier]:
        each = model.describe()
        metrics.model(each["version"], each["provider"], each["precision"], each["requested_device"])
    limits = Limits(stream.max_message_bytes, stream.max_text_chars)
    linker = linker_for(stream.watchlist, stream.company_universe)
    scoring = Pipe(kafka, stream, stream.app_id, topics.news, metrics)
    windowing = Pipe(kafka, stream, f"{stream.app_id}-windows", w.trend_events, metrics)
    stages = [
        ScoreStage(w, Scorer(classifier, limits, metrics, linker), scoring, loop=w.app.loop, beacon=w.app.beacon),
        WindowStage(w, windowing, info["version"], loop=w.app.loop, beacon=w.app.beacon),
    ]
    w.app._extra_services.extend(stages)  # type: ignore[arg-type]  # instances: started with the app
    serve_metrics(w.app, metrics, [scoring, windowing])
    add_health(w.app, metrics, info, scoring)
    if alerting is not None and alerting.enabled:
        add_detection(w.app, topics, alerting, window_specs(windows)[0].name, metrics)
        if alerting.targets:
            add_delivery(w.app, kafka, stream, topics, alerting, metrics)
    return w.app
