"""Create the pipeline's topics when missing (existing topics are left as they are)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)


def client_options(kafka: KafkaSettings) -> dict[str, object]:
    """aiokafka connection options from the settings (SASL/TLS passed through)."""
    from streams.app import credentials

    options: dict[str, object] = {
        "bootstrap_servers": kafka.bootstrap_servers or "",
        "security_protocol": kafka.security_protocol,
    }
    creds = credentials(kafka)
    if creds is not None and getattr(creds, "ssl_context", None) is not None:
        options["ssl_context"] = creds.ssl_context
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    return options


async def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> list[str]:
    """Create the pipeline's topics that do not exist yet; return the ones created.

    The feedback topic never expires: analysts' corrections are training data.
    """
    admin = AIOKafkaAdminClient(**client_options(kafka))  # type: ignore[arg-type]
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [topics.news, topics.scored, topics.dlq, topics.trends, topics.alerts, topics.alerts_dlq]
        missing = [name for name in [*wanted, topics.feedback] if name not in existing]
        if missing:
            kept = {"retention.ms": "-1"}
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        topics.partitions,
                        topics.replication,
                        topic_configs=kept if name == topics.feedback else {},
                    )
                    for name in missing
                ]
            )
            log.info("created topics %s", ", ".join(missing))
        return missing
    finally:
        await admin.close()


async def create_topic(kafka: KafkaSettings, name: str, partitions: int, replication: int) -> bool:
    """Create ``name`` when missing; True when it was created."""
    admin = AIOKafkaAdminClient(**client_options(kafka))  # type: ignore[arg-type]
    await admin.start()
    try:
        if name in set(await admin.list_topics()):
            return False
        await admin.create_topics([NewTopic(name, partitions, replication)])
        log.info("created topic %s", name)
        return True
    finally:
        await admin.close()
