"""Local services for development and tests: Kafka from Maven Central, PostgreSQL from pgserver."""
