"""Create the pipeline's topics when missing (existing topics are left as they are)."""

from __future__ import annotations

import logging
import ssl

from kafka import errors
from kafka.admin import KafkaAdminClient, NewTopic

from streams.errors import ClusterError
from streams.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)


def tls_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL connections: the brokers verified against the CA file
    (or the system's CAs), the client certificate presented for mutual TLS when one is set."""
    if kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=kafka.ssl_cafile)
    if kafka.ssl_certfile:
        context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile)
    return context


def client_options(kafka: KafkaSettings) -> dict[str, object]:
    """Connection options from the settings (SASL/TLS passed through), in the names aiokafka and kafka-python share."""
    options: dict[str, object] = {
        "bootstrap_servers": kafka.bootstrap_servers or "",
        "security_protocol": kafka.security_protocol,
    }
    context = tls_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    return options


def ensure_topics(
    kafka: KafkaSettings,
    topics: TopicSettings,
    internal: dict[str, dict[str, str]] | None = None,
    pipeline: bool = True,
) -> list[str]:
    """Create the pipeline's topics that do not exist yet, and wait until the cluster serves them;
    return the ones created here (another worker may create some at the same moment).

    The feedback topic never expires: analysts' corrections are training data. ``internal``: the
    worker's own topics, each with its configuration (a compacted changelog). ``pipeline=False``:
    the news topic and ``internal`` only (``finmon ingest``, which may hold no right on the others).
    """
    try:
        admin = KafkaAdminClient(**client_options(kafka))
    except errors.KafkaError as exc:
        raise ClusterError(f"cannot reach the Kafka cluster at {kafka.bootstrap_servers}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        wanted = [topics.news, topics.scored, topics.dlq, topics.trends, topics.alerts, topics.alerts_dlq]
        configs = {topics.feedback: {"retention.ms": "-1"}, **(internal or {})}
        if not pipeline:
            wanted, configs = [topics.news], dict(internal or {})
        missing = [name for name in [*wanted, *configs] if name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(name, topics.partitions, topics.replication, topic_configs=configs.get(name, {}))
            for name in missing
        ]
        result = admin.create_topics(new, raise_errors=False, wait_for_metadata=False)
        created, failed = [], []
        for outcome in result["topics"]:
            error = errors.for_code(outcome["error_code"])
            if error is errors.NoError:
                created.append(outcome["name"])
            elif error is not errors.TopicAlreadyExistsError:
                failed.append(f"{outcome['name']}: {error.__name__} {outcome.get('error_message') or ''}".strip())
        if failed:
            raise ClusterError("cannot create topics: " + "; ".join(failed))
        admin.wait_for_topics(missing)
        return created
    finally:
        admin.close()
