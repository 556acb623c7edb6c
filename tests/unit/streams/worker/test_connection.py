import ssl

import faust

from streams.cluster.topics import client_options
from streams.core.windows import scope_keys
from streams.settings import KafkaSettings, StreamSettings, TopicSettings
from streams.worker.app import base_app, broker_url, credentials
from streams.worker.score import partition_of


def test_broker_url_lists_every_server() -> None:
    settings = KafkaSettings(bootstrap_servers="k1:9092, k2:9093")
    assert broker_url(settings) == "kafka://k1:9092;kafka://k2:9093"


def test_plaintext_has_no_credentials() -> None:
    assert credentials(KafkaSettings(bootstrap_servers="k:9092")) is None


def test_sasl_ssl_is_passed_through_to_faust_and_aiokafka() -> None:
    settings = KafkaSettings(
        bootstrap_servers="k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="finmon",
        sasl_password="s3cret",
    )
    creds = credentials(settings)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == ("finmon", "s3cret", "SCRAM-SHA-512")
    assert isinstance(creds.ssl_context, ssl.SSLContext)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_scopes_and_partitions() -> None:
    assert scope_keys({"topic": "Macro", "tickers": ["AAPL"]}) == [("topic", "Macro"), ("ticker", "AAPL")]
    assert partition_of(b"topic\x1fMacro", 1) == 0
    assert {partition_of(f"k{i}".encode(), 4) for i in range(50)} == {0, 1, 2, 3}


def producer_options(stream: StreamSettings, name: str) -> dict[str, object]:
    """The options the worker's app hands aiokafka's producer (faust's own merge of its three parts)."""
    producer = base_app(KafkaSettings(bootstrap_servers="127.0.0.1:1"), TopicSettings(), stream, name).producer
    return {**producer._settings_default(), **producer._settings_auth(), **producer._settings_extra()}


def test_worker_producer_lingers_as_configured_and_is_idempotent_by_default() -> None:
    default = producer_options(StreamSettings(), "producer-default")
    assert (default["linger_ms"], default["max_batch_size"]) == (20, 16384)
    assert default["enable_idempotence"] is True and default["acks"] == "all"
    tuned = producer_options(StreamSettings(producer_linger=0.25, idempotent_producer=False), "producer-tuned")
    assert tuned["linger_ms"] == 250 and "enable_idempotence" not in tuned


def test_tls_alone_passes_its_context_to_every_client() -> None:
    settings = KafkaSettings(bootstrap_servers="k:9093", security_protocol="SSL")
    assert isinstance(client_options(settings)["ssl_context"], ssl.SSLContext)
    creds = credentials(settings)
    assert isinstance(creds, faust.SSLCredentials) and isinstance(creds.context, ssl.SSLContext)


def test_bootstrap_servers_are_read_as_hosts_and_ports() -> None:
    from streams.cluster.preflight import servers

    settings = KafkaSettings(bootstrap_servers="k1:9092, [::1]:9093,k3")
    assert servers(settings) == [("k1", 9092), ("::1", 9093), ("k3", 9092)]
