"""The live monitor: Kafka events through the rules engine into ClickHouse, topics and metrics."""
