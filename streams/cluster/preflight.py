"""One look at the cluster before a command consumes: if it cannot be used, the reason in one line.

Kafka clients retry a refused TLS handshake or SASL login until their timeout and then report only
that bootstrap failed; a desk's operator needs to read which of the two, and why, at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed
from kafka import errors
from kafka.admin import ACLOperation, KafkaAdminClient

from streams.cluster.acls import required_grants
from streams.cluster.topics import client_options
from streams.errors import ClusterError
from streams.settings import KafkaSettings, StreamSettings, TopicSettings

log = logging.getLogger(__name__)
CONNECT_OPTIONS = ("security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")


def servers(kafka: KafkaSettings) -> list[tuple[str, int]]:
    found = []
    for server in (kafka.bootstrap_servers or "").replace(" ", "").split(","):
        if server:
            host, _, port = server.rpartition(":")
            found.append((host.strip("[]") or server, int(port) if port.isdigit() else 9092))
    return found


def check_cluster(kafka: KafkaSettings, timeout: float = 15.0) -> None:
    """Connect (and log in) to the first bootstrap server that answers; raise ClusterError when TLS or
    SASL refuses, or when none answers. Nothing is read or written."""
    options = client_options(kafka)
    chosen = {name: options[name] for name in CONNECT_OPTIONS if name in options}
    unreachable = []
    for host, port in servers(kafka):
        try:
            asyncio.run(asyncio.wait_for(_connect(host, port, chosen), timeout))
            return
        except ssl.SSLCertVerificationError as exc:
            trusted = kafka.ssl_cafile or "the system's CA certificates"
            raise ClusterError(
                f"TLS: {host}:{port} presented a certificate that does not verify against {trusted}: "
                f"{exc.verify_message}"
            ) from exc
        except ssl.SSLError as exc:
            raise ClusterError(
                f"TLS: handshake with {host}:{port} failed ({exc.reason}); is it a TLS listener?"
            ) from exc
        except SaslAuthenticationFailed as exc:
            raise ClusterError(
                f"SASL: {host}:{port} refused user {kafka.sasl_username!r} with {kafka.sasl_mechanism}: "
                "wrong user name or password"
            ) from exc
        except (OSError, TimeoutError, KafkaError) as exc:
            unreachable.append(f"{host}:{port} ({type(exc).__name__}: {exc})" if str(exc) else f"{host}:{port}")
    raise ClusterError("cannot reach any Kafka broker: " + "; ".join(unreachable))


async def _connect(host: str, port: int, options: dict[str, object]) -> None:
    connection = await create_conn(host, port, request_timeout_ms=10_000, **options)  # type: ignore[arg-type]
    connection.close()


TOPIC_AUTHORIZATION_FAILED = 29


def check_permissions(kafka: KafkaSettings, topics: TopicSettings, stream: StreamSettings) -> None:
    """Raise ClusterError naming each right on the pipeline's topics and group that the principal
    lacks, from what the cluster says it may do (KIP-430); without an authorizer everything is allowed."""
    wanted = [g for g in required_grants(topics, stream, create_topics=False) if g.pattern == "literal"]
    admin = KafkaAdminClient(**client_options(kafka))
    try:
        names = sorted({g.name for g in wanted if g.resource == "topic"})
        try:
            described = {t["name"]: t for t in admin.describe_topics(names)}
        except ValueError:  # operations the client cannot name: nothing usable to check against
            log.warning("the cluster's answer on topic permissions could not be read; not checked")
            return
        groups = _describe_group(admin, stream.app_id)
    finally:
        admin.close()
    allowed: dict[tuple[str, str], set[str] | None] = {}
    for name, topic in described.items():
        denied = topic.get("error_code") == TOPIC_AUTHORIZATION_FAILED
        allowed[("topic", name)] = set() if denied else _names(topic.get("authorized_operations"))
    for group in groups:
        allowed[("group", stream.app_id)] = _names(group.get("authorized_operations"))
    missing = [
        f"{g.operation} on {g.resource} {g.name}"
        for g in wanted
        if (known := allowed.get((g.resource, g.name))) is not None and g.operation.upper() not in known
    ]
    if missing:
        who = kafka.sasl_username or "this client"
        raise ClusterError(f"Kafka ACLs: {who} lacks {', '.join(missing)} (`finmon config acls` lists what to grant)")


def _names(operations: object) -> set[str] | None:
    """Operation names, from kafka-python's list or a KIP-430 bit field; None when the broker did not say."""
    if isinstance(operations, list):  # empty: not reported (a topic one may see at all allows Describe)
        return {str(name) for name in operations} or None
    if not isinstance(operations, int) or operations < 0:
        return None
    return {op.name for op in ACLOperation if op.value and operations & (1 << op.value)}


def _describe_group(admin: KafkaAdminClient, group: str, attempts: int = 20) -> list[dict[str, object]]:
    """The group as the cluster describes it to this principal; [] when the cluster cannot say yet
    (its group coordinator still starting) or when the principal may not describe it (checked at join)."""
    for _ in range(attempts):
        try:
            return list(admin.describe_groups([group], include_authorized_operations=True).values())
        except errors.GroupAuthorizationFailedError:
            return [{"authorized_operations": []}]
        except ValueError:  # operations the client cannot name
            return []
        except errors.KafkaError as exc:
            if not getattr(exc, "retriable", False):
                return []
            time.sleep(0.5)
    return []
