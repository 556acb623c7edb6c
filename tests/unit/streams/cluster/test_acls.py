from pathlib import Path

from streams.cluster.acls import Grant, kafka_acls_commands, required_grants
from streams.settings import StreamSettings, TopicSettings

SCRIPT = Path(__file__).resolve().parents[4] / "deploy" / "kafka" / "acls.sh"


def test_the_shipped_script_grants_exactly_the_list_the_tests_apply() -> None:
    commands = kafka_acls_commands(required_grants(TopicSettings(), StreamSettings()), "User:finmon")
    assert [line for line in SCRIPT.read_text().splitlines() if line.startswith("kafka-acls.sh")] == commands


def test_no_cluster_right_and_nothing_beyond_the_pipelines_names() -> None:
    grants = required_grants(TopicSettings(), StreamSettings(app_id="desk"), create_topics=False)
    assert {g.resource for g in grants} == {"topic", "group"}
    assert {(g.name, g.pattern) for g in grants if g.pattern == "prefixed"} == {("desk-", "prefixed")}
    assert Grant("topic", "news", "literal", "Write") not in grants  # the input is read only
    assert Grant("topic", "alerts", "literal", "Write") in grants
    assert not [g for g in grants if g.operation == "Create" and g.pattern == "literal"]


def test_the_ingester_writes_news_and_its_state_and_nothing_of_the_pipeline_beyond() -> None:
    from streams.cluster.acls import ingest_grants

    grants = ingest_grants(TopicSettings(), StreamSettings(app_id="desk"), create_topics=False)
    assert {(g.resource, g.name, g.pattern) for g in grants} == {
        ("topic", "news", "literal"),
        ("topic", "news.ingest.state", "literal"),
        ("group", "desk-ingest", "literal"),
        ("transactional-id", "desk-ingest-", "prefixed"),
    }
    assert (
        Grant("topic", "news", "literal", "Read") not in grants and Grant("topic", "news", "literal", "Write") in grants
    )
    assert not [g for g in grants if g.operation == "Create"]
    command = kafka_acls_commands(grants, "User:ingest")[-1]
    assert "--transactional-id 'desk-ingest-' --resource-pattern-type prefixed" in command
