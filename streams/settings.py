"""The Kafka section of finmon's settings: where the broker is and how to reach it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class KafkaSettings(BaseModel):
    """Connection to any Kafka-protocol cluster; nothing here is specific to one broker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]. Unset: `finmon demo` starts an embedded broker on loopback."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = Field(None, description="CA bundle used to verify the brokers (SSL, SASL_SSL).")
    ssl_certfile: str | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: str | None = Field(None, description="Client private key for mutual TLS.")


class TopicSettings(BaseModel):
    """Topic names (every stage reads one topic and writes another)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    news: str = "news"
    scored: str = "news.scored"
    dlq: str = "news.dlq"
    trends: str = "sentiment.trends"
    alerts: str = "alerts"
    alerts_dlq: str = "alerts.dlq"
    feedback: str = Field("feedback", description="Analyst corrections from the dashboard (kept: never expire).")
    ingest_state: str = Field(
        "news.ingest.state",
        description="What `finmon ingest` has sent, one record per story (compacted); its partitions bound "
        "how many ingest replicas share the sources.",
    )
    partitions: int = Field(1, ge=1, description="Partitions of topics finmon creates (existing ones are kept).")
    replication: int = Field(1, ge=1, description="Replication factor of topics finmon creates.")


class StreamSettings(BaseModel):
    """The worker: consumer group, batching, input limits, web endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_id: str = Field("finmon", description="Consumer group and prefix of internal topics.")
    batch_max: int = Field(64, ge=1, le=10_000, description="Most documents classified in one batch.")
    batch_within: float = Field(0.1, gt=0, description="Seconds to wait for a batch to fill before scoring it.")
    max_message_bytes: int = Field(1_048_576, ge=1024, description="Larger messages are dead-lettered, too_large.")
    max_text_chars: int = Field(100_000, ge=1, description="Longer title + body is dead-lettered, too_large.")
    session_timeout: float = Field(
        10.0, gt=0, description="Consumer group session timeout (seconds); long inference never blocks heartbeats."
    )
    heartbeat_interval: float = Field(3.0, gt=0)
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="exactly_once: faust's Kafka transactions (read_committed consumers, a transactional "
        "producer per partition). See the README before turning it on.",
    )
    idempotent_producer: bool = Field(
        True,
        description="Kafka's idempotent producer (acks=all): a retried send is never written twice. "
        "Needs a broker that grants producer ids (Apache Kafka 0.11+ does).",
    )
    producer_linger: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Seconds a produce batch waits for more records: fewer, fuller requests for a little latency.",
    )
    watchlist: Path | None = Field(
        None,
        description="A desk's companies, CSV with ticker, name and aliases (|-separated): linked by name in "
        "titles and bodies, overriding the index universe.",
    )
    company_universe: bool = Field(
        True, description="Link the constituents of 20 major indices (pytickersymbols) by name and alias."
    )
    web_host: str = Field("127.0.0.1", description="Bind address of /metrics and /health.")
    web_port: int = Field(6066, ge=0, le=65535)
    data_dir: str = Field("var/finmon", description="Faust's local state folder.")


class WindowSettings(BaseModel):
    """Trend windows by event time (published_at)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tumbling_seconds: int = Field(60, ge=1)
    hopping_seconds: int = Field(900, ge=1)
    hopping_step_seconds: int = Field(60, ge=1)
    grace_seconds: int = Field(30, ge=0, description="How late an event may arrive and still be counted.")
    max_future_seconds: int = Field(300, ge=0, description="Events further ahead of the clock are not counted.")
    emit_interval: float = Field(
        2.0,
        gt=0,
        description="Seconds between checkpoints of the window stage: trend updates, closed windows, window "
        "state written once per changed bucket, offsets committed.",
    )
    silent_windows: int = Field(
        3,
        ge=0,
        description="Empty windows reported after a key's last story: a key that goes quiet reads zero, and "
        "an alert on it resolves after the detector's exit_windows (keep this at least that).",
    )
    watch_tickers: tuple[str, ...] = Field(
        (), description='Tickers that get their own Prometheus gauges, as JSON (["AAPL", "TSLA"]); keep it short.'
    )


class IngestSettings(BaseModel):
    """`finmon ingest`: the sources file and how politely it polls them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: Path | None = Field(
        None, description="The sources file (YAML or TOML): feeds, JSON news APIs, sitemaps and page lists."
    )
    user_agent: str = Field(
        "finmon-ingest/1 (financial news monitor; set FINMON_INGEST__USER_AGENT to name your desk and a contact)",
        description="The User-Agent of every request; say who you are and how a publisher reaches you.",
    )
    timeout: float = Field(
        30.0, gt=0, description="Seconds one request may take in all (connect, headers, body): a trickle ends here."
    )
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to connect to a host.")
    max_bytes: int = Field(10_000_000, ge=1024, description="Largest response body read off the wire, in bytes.")
    max_decompressed_bytes: int = Field(
        30_000_000, ge=1024, description="Largest body once gzip/deflate is undone (a gzip bomb stops here)."
    )
    max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed per request (a loop ends here).")
    host_interval: float = Field(
        1.0, ge=0, description="Least seconds between two requests to one host (every source and page on it)."
    )
    backoff_base: float = Field(30.0, gt=0, description="First wait after a failed poll; doubles per failure.")
    backoff_max: float = Field(3600.0, gt=0, description="Longest wait after failures or a Retry-After.")
    gone_after: int = Field(
        3, ge=1, description="Consecutive 404/410 answers after which a source is taken as gone and no longer polled."
    )
    robots: bool = Field(True, description="Honour robots.txt for article pages, sitemaps and page lists.")
    max_articles: int = Field(
        50, ge=1, description="Article pages fetched per source and poll; the rest wait for the next poll."
    )
    state_retention_days: float = Field(
        30.0, gt=0, description="How long the ingest state remembers a story (longer than any feed keeps an item)."
    )
    web_host: str = Field("127.0.0.1", description="Bind address of the ingester's /metrics and /health.")
    web_port: int = Field(6068, ge=0, le=65535)
