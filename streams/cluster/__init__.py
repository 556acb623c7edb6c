"""Reaching a Kafka cluster: client options (TLS, SASL), topic creation, ACLs, the checks made before consuming."""
