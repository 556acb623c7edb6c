#!/bin/sh
# The Kafka ACLs finmon needs with the default topic names and application id, and no more
# (regenerate for your settings with `finmon config acls --principal User:NAME`).
# Usage: BOOTSTRAP=kafka-1:9093 ADMIN_CONFIG=admin.properties sh deploy/kafka/acls.sh
set -eu
: "${BOOTSTRAP:?set BOOTSTRAP to the cluster}" "${ADMIN_CONFIG:?set ADMIN_CONFIG to an admin client properties file}"
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Describe --operation Read --group 'finmon' --resource-pattern-type literal
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Describe --operation Read --group 'finmon-' --resource-pattern-type prefixed
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Read --operation Write --topic 'alerts' --resource-pattern-type literal
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Write --topic 'alerts.dlq' --resource-pattern-type literal
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Read --operation Write --topic 'feedback' --resource-pattern-type literal
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Read --operation Write --topic 'finmon-' --resource-pattern-type prefixed
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Read --topic 'news' --resource-pattern-type literal
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Write --topic 'news.dlq' --resource-pattern-type literal
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Read --operation Write --topic 'news.scored' --resource-pattern-type literal
kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --allow-principal User:finmon --operation Create --operation Describe --operation Read --operation Write --topic 'sentiment.trends' --resource-pattern-type literal
