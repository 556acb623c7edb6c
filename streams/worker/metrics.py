"""Every Prometheus metric of the worker, declared once against an injected registry."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.runtime import Timings
from streams.core.decode import REASONS
from streams.core.records import Trend

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class WorkerMetrics:
    """The worker's metrics; tests read them with ``registry.get_sample_value``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.consumed = Counter(
            "finmon_documents_consumed_total", "Messages read from the news topic.", registry=registry
        )
        self.scored = Counter(
            "finmon_documents_scored_total",
            "Documents scored, by topic and sentiment.",
            ["topic", "sentiment"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "finmon_documents_dead_lettered_total",
            "Messages sent to the DLQ, by reason.",
            ["reason"],
            registry=registry,
        )
        self.window_state_keys = Gauge(
            "finmon_window_state_keys",
            "Keys of window state (buckets and seen markers) this worker holds; expiry keeps it bounded.",
            registry=registry,
        )
        self.window_events = Counter(
            "finmon_window_events_total",
            "Scored documents offered to the windows, by outcome (counted, duplicate, late beyond grace, future).",
            ["scope", "outcome"],
            registry=registry,
        )
        self.trend_records = Counter(
            "finmon_trend_records_total", "Records produced to the trends topic.", ["final"], registry=registry
        )
        self.batch_size = Histogram(
            "finmon_inference_batch_size", "Documents per inference batch.", buckets=BATCH_BUCKETS, registry=registry
        )
        self.inference_seconds = Histogram(
            "finmon_inference_batch_seconds", "Model time per inference batch.", buckets=FAST_BUCKETS, registry=registry
        )
        self.tokenize_seconds = Histogram(
            "finmon_tokenize_seconds", "Tokenization time per classify call.", buckets=FAST_BUCKETS, registry=registry
        )
        self.truncated = Counter(
            "finmon_documents_truncated_total", "Documents cut to the model's maximum length.", registry=registry
        )
        self.event_to_scored = Histogram(
            "finmon_event_to_scored_seconds",
            "published_at to scored, in seconds.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ingest_to_scored = Histogram(
            "finmon_ingest_to_scored_seconds",
            "Kafka message timestamp (ingest) to scored, in seconds.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.window_negative_share = Gauge(
            "finmon_window_negative_share",
            "Negative share of the latest closed tumbling window.",
            ["scope", "key"],
            registry=registry,
        )
        self.window_documents = Gauge(
            "finmon_window_documents",
            "Documents in the latest closed tumbling window.",
            ["scope", "key"],
            registry=registry,
        )
        self.rebalances = Counter(
            "finmon_rebalances_total", "Consumer group rebalances seen by this worker.", registry=registry
        )
        self.commit_seconds = Histogram(
            "finmon_commit_seconds", "Time to commit consumer offsets.", buckets=FAST_BUCKETS, registry=registry
        )
        self.gpu_requested = Gauge(
            "finmon_model_gpu_requested", "1 when the settings ask for the CUDA provider.", registry=registry
        )
        self.model_info = Gauge(
            "finmon_model_info", "The loaded model (value 1).", ["version", "provider", "precision"], registry=registry
        )
        self.model_loaded = Gauge("finmon_model_loaded", "1 once the model is loaded.", registry=registry)
        self.assigned_partitions = Gauge(
            "finmon_assigned_partitions", "Partitions assigned to this worker.", registry=registry
        )

        self.alerts = Counter(
            "finmon_alerts_total",
            "Alert records produced, by status and scope.",
            ["status", "scope"],
            registry=registry,
        )
        self.deliveries = Counter(
            "finmon_alert_deliveries_total",
            "Alert deliveries, by target and outcome.",
            ["target", "outcome"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "finmon_alert_delivery_seconds",
            "Time to deliver (all attempts).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.delivery_retries = Counter(
            "finmon_alert_delivery_retries_total", "Delivery attempts retried.", ["target"], registry=registry
        )
        self.alerts_dead = Counter("finmon_alerts_dead_lettered_total", "Alerts sent to alerts.dlq.", registry=registry)
        self.delivery_pending = Gauge(
            "finmon_alert_delivery_pending",
            "Alerts read for a target and not yet delivered or dead-lettered.",
            ["target"],
            registry=registry,
        )
        self.delivery_partitions = Gauge(
            "finmon_alert_delivery_partitions",
            "Partitions of the alerts topic this process delivers to a target.",
            ["target"],
            registry=registry,
        )

        self._zeros()

    def _zeros(self) -> None:
        """Create every known label combination at 0, so dashboards and rules see series from the start."""
        for topic in TOPIC_LABELS:
            for sentiment in SENTIMENT_LABELS:
                self.scored.labels(topic=topic, sentiment=sentiment)
        for reason in REASONS:
            self.dead_letters.labels(reason=reason)
        for scope in ("topic", "ticker"):
            for outcome in ("counted", "duplicate", "late", "future"):
                self.window_events.labels(scope=scope, outcome=outcome)
            for status in ("firing", "resolved"):
                self.alerts.labels(status=status, scope=scope)
        for final in ("true", "false"):
            self.trend_records.labels(final=final)

    def delivery_targets(self, names: list[str]) -> None:
        for name in names:
            self.delivery_retries.labels(target=name)
            self.delivery_pending.labels(target=name)
            self.delivery_partitions.labels(target=name)
            for outcome in ("delivered", "failed", "permanent"):
                self.deliveries.labels(target=name, outcome=outcome)

    def observe_inference(self, timings: Timings) -> None:
        self.tokenize_seconds.observe(timings.tokenize_seconds)
        for size, seconds in zip(timings.batch_sizes, timings.inference_seconds, strict=True):
            self.batch_size.observe(size)
            self.inference_seconds.observe(seconds)
        self.truncated.inc(timings.truncated)

    def closed_window(self, record: Trend, watch: frozenset[str]) -> None:
        """Gauges for a final window: every topic (bounded: 20), tickers only on the watch-list."""
        if record.scope == "topic" or record.key in watch:
            self.window_negative_share.labels(scope=record.scope, key=record.key).set(record.negative_share)
            self.window_documents.labels(scope=record.scope, key=record.key).set(record.total)

    def model(self, version: str, provider: str, precision: str, requested: str = "auto") -> None:
        self.model_info.labels(version=version, provider=provider, precision=precision).set(1)
        self.gpu_requested.set(1 if requested == "cuda" else 0)
        self.model_loaded.set(1)


class IngestMetrics:
    """``finmon ingest``'s metrics, per source (the sources file bounds the label)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.fetched = Counter(
            "finmon_ingest_items_fetched_total", "Items found in a source's answers.", ["source"], registry=registry
        )
        self.new = Counter(
            "finmon_ingest_items_new_total", "Stories sent to the news topic.", ["source"], registry=registry
        )
        self.duplicate = Counter(
            "finmon_ingest_items_duplicate_total",
            "Items already sent before (by this replica, another one or an earlier run).",
            ["source"],
            registry=registry,
        )
        self.invalid = Counter(
            "finmon_ingest_items_invalid_total",
            "Items with neither a title nor any text, skipped.",
            ["source"],
            registry=registry,
        )
        self.polls = Counter(
            "finmon_ingest_polls_total",
            "Polls of a source, by outcome (ok, not_modified, failed).",
            ["source", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "finmon_ingest_failures_total",
            "Failed requests and bodies, by source and reason (timeout, too_large, http_404, malformed, robots, ...).",
            ["source", "reason"],
            registry=registry,
        )
        self.pages = Counter(
            "finmon_ingest_pages_total",
            "Article pages fetched for their text, by outcome (ok, robots, failed, empty).",
            ["source", "outcome"],
            registry=registry,
        )
        self.last_success = Gauge(
            "finmon_ingest_last_success_timestamp_seconds",
            "When a poll of the source last succeeded (or this replica took the source over).",
            ["source"],
            registry=registry,
        )
        self.interval = Gauge(
            "finmon_ingest_poll_interval_seconds", "The source's poll interval.", ["source"], registry=registry
        )
        self.gone = Gauge(
            "finmon_ingest_source_gone",
            "1 once a source answered 404/410 too often and is no longer polled.",
            ["source"],
            registry=registry,
        )
        self.owned = Gauge(
            "finmon_ingest_sources_owned",
            "Sources this replica polls (the others' are polled elsewhere).",
            registry=registry,
        )
        self.state_records = Gauge(
            "finmon_ingest_state_stories",
            "Stories this replica knows as sent (the state topic as read, and its own sends).",
            registry=registry,
        )

    def take(self, source: str, interval: float, now: float) -> None:
        """A source this replica now polls: its series start (zero counts, the time it was taken over)."""
        for counter in (self.fetched, self.new, self.duplicate, self.invalid):
            counter.labels(source=source)
        self.last_success.labels(source=source).set(now)
        self.interval.labels(source=source).set(interval)
        self.gone.labels(source=source).set(0)

    def drop(self, source: str) -> None:
        """A source another replica polls now: its gauges leave this one's page."""
        for gauge in (self.last_success, self.interval, self.gone):
            with contextlib.suppress(KeyError):
                gauge.remove(source)
