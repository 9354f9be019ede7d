"""The topics the worker creates: every one it reads or writes, sized by the shared settings."""

from __future__ import annotations

from qikflow.config import KafkaSettings
from qikflow.topics import Topics
from streams.events import event_types
from streams.topics import output_topics, worker_topics


def test_the_worker_creates_raw_keyed_and_every_published_topic_at_the_default_size() -> None:
    kafka = KafkaSettings(topic_prefix="acme")
    specs = worker_topics(kafka)
    topics = Topics("acme")
    assert [spec.name for spec in specs] == [topics.raw, topics.keyed, *output_topics(topics)]
    assert set(output_topics(topics)) == {
        *(f"acme.{event_type}" for event_type in event_types()),
        "acme.unknown", "acme.dlq", "acme.contact.optout",
    }
    defaults = KafkaSettings.model_fields
    for spec in specs:
        assert spec.partitions == defaults["topic_partitions"].default
        assert spec.replication_factor == defaults["topic_replication_factor"].default
        assert spec.configs == {}


def test_another_prefix_names_other_topics() -> None:
    kafka = KafkaSettings(topic_prefix="acme")
    names = [spec.name for spec in worker_topics(kafka, Topics("beta"))]
    assert names[:2] == ["beta.raw", "beta.streams.keyed"]
    assert all(name.startswith("beta.") for name in names)
