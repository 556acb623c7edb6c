"""The Kafka ACLs a finmon worker needs, and no more: one list for the operator's script, the
README and the tests, derived from the topic names and the application id in the settings.

The worker reads its own outputs in later stages (scored news into windows, trends into the
detector, alerts into delivery), so those topics need Read as well as Write. Internal topics
(changelogs, the trend-events repartition topic, faust's assignor topic) and consumer groups are
the application id or start with it and a dash. No cluster-wide right is needed: Write on a topic
lets the idempotent producer in (Kafka 3.0+, KIP-679), and Create on named topics lets finmon
create them.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.settings import StreamSettings, TopicSettings


@dataclass(frozen=True, order=True)
class Grant:
    """Allow ``operation`` on a topic or group, by its literal name or by a name prefix."""

    resource: str  # topic | group | transactional-id
    name: str
    pattern: str  # literal | prefixed
    operation: str  # Read | Write | Create | Describe


def required_grants(topics: TopicSettings, stream: StreamSettings, create_topics: bool = True) -> list[Grant]:
    """What the worker (and ``finmon alerts``, the dashboard, feedback) needs; ``create_topics=False``
    when an operator creates the pipeline's topics beforehand."""
    reads = [topics.news]
    reads_and_writes = [topics.scored, topics.trends, topics.alerts, topics.feedback]
    writes = [topics.dlq, topics.alerts_dlq]
    grants = []
    for name in [*reads, *reads_and_writes, *writes]:
        operations = ["Describe"]
        operations += ["Read"] if name not in writes else []
        operations += ["Write"] if name not in reads else []
        operations += ["Create"] if create_topics else []
        grants += [Grant("topic", name, "literal", operation) for operation in operations]
    internal = f"{stream.app_id}-"
    grants += [Grant("topic", internal, "prefixed", op) for op in ("Create", "Describe", "Read", "Write")]
    for name, pattern in [(stream.app_id, "literal"), (internal, "prefixed")]:  # the worker's, `finmon alerts`'s
        grants += [Grant("group", name, pattern, op) for op in ("Describe", "Read")]
    return sorted(set(grants))


def ingest_grants(topics: TopicSettings, stream: StreamSettings, create_topics: bool = True) -> list[Grant]:
    """What ``finmon ingest`` needs, for a principal of its own: Write on news, its state topic, its
    group, and its transactional ids (one per state partition: the fencing of a replica that hung)."""
    create = ["Create"] if create_topics else []
    grants = [Grant("topic", topics.news, "literal", op) for op in ("Describe", "Write", *create)]
    grants += [Grant("topic", topics.ingest_state, "literal", op) for op in ("Describe", "Read", "Write", *create)]
    group = f"{stream.app_id}-ingest"
    grants += [Grant("group", group, "literal", op) for op in ("Describe", "Read")]
    grants += [Grant("transactional-id", f"{group}-", "prefixed", op) for op in ("Describe", "Write")]
    return sorted(set(grants))


def kafka_acls_commands(grants: list[Grant], principal: str, bootstrap: str = "$BOOTSTRAP") -> list[str]:
    """The grants as commands of Apache Kafka's own ``kafka-acls.sh``, one per resource."""
    by_resource: dict[tuple[str, str, str], list[str]] = {}
    for grant in grants:
        by_resource.setdefault((grant.resource, grant.name, grant.pattern), []).append(grant.operation)
    commands = []
    for (resource, name, pattern), operations in sorted(by_resource.items()):
        ops = " ".join(f"--operation {op}" for op in operations)
        commands.append(
            f'kafka-acls.sh --bootstrap-server "{bootstrap}" --command-config "$ADMIN_CONFIG" --add '
            f"--allow-principal {principal} {ops} --{resource} '{name}' --resource-pattern-type {pattern}"
        )
    return commands
