"""Events land whichever compression codec the partner's producer chose."""

from __future__ import annotations

import pytest
from kafka import KafkaProducer

from schemas.topics import events_topic
from tests.support.consumers import landed, service
from tests.support.events import encode, enrollment

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_events_compressed_with_each_codec_land(
        codec, kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             compression_type=codec, linger_ms=20)
    for n in range(50):
        producer.send(events_topic(pid), encode(enrollment(pid, n)))
    producer.flush()
    producer.close()

    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    assert sorted(e for _, e in landed(database_url)) == [f"{pid}-evt-{n:07d}" for n in range(50)]
