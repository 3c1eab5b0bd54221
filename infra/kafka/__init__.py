"""The local Apache Kafka broker (KRaft, single node) run from its Maven Central jars."""
