"""Bad input of every class mixed into valid traffic: each refused with its reason, none lost."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from partners.faults import Faults
from partners.simulate import HEADERS, OutgoingMessage
from schemas.topics import events_topic, rejects_topic
from tests.fault.harness import Scale, Traffic
from tests.support.consumers import service
from tests.support.events import encode, enrollment, poison
from tests.support.kafka import read_topic
from tests.support.nightly import registry_of

pytestmark = pytest.mark.integration

# Every class of refusal the simulator injects, several times each.
EVERY_FAULT = Faults(duplicate_rate=0.02, malformed=6, schema_violations=12, bad_checksums=4,
                     foreign_source=4, forbidden_types=4)


def test_poison_of_every_class_is_refused_with_its_reason_and_valid_events_all_land(
        scale: Scale, tmp_path, kafka_bootstrap, database_url, new_partners, pseudonymiser):
    made = new_partners("training_platform", "training_platform#2", "technician_college",
                        "evaluation_org")
    roles = {pid: label.split("#")[0] for label, pid in made.items()}
    # 1,000 valid events in the short run; the long run keeps the 10,000 of every scenario.
    traffic = Traffic.simulated(made, Scale(scale.name, max(1000, scale.events - 500),
                                            scale.rounds, scale.traffic_s), 707, EVERY_FAULT)
    rng = random.Random(707)
    messages = traffic.messages
    pills = []
    # The pills are spoiled enrollments, so only partners allowed to enrol people get them: an
    # evaluation organisation's would be refused for its role before their own fault.
    enrolling = [pid for label, pid in made.items() if not label.startswith("evaluation_org")]
    for pid in enrolling:
        for n, (reason, value) in enumerate(sorted(poison(pid).items())):
            key = f"poison-{reason}-{n}"
            pills.append(OutgoingMessage(events_topic(pid), key.encode(), value, HEADERS))
            traffic.manifest["rejected"].append(
                {"partner": pid, "id": None, "key": key, "reason": reason, "fault": "poison"})
    # And an evaluation organisation enrolling someone: a type its role may not send.
    for label, pid in made.items():
        if label.startswith("evaluation_org"):
            key = "poison-authorise.type_not_allowed"
            pills.append(OutgoingMessage(events_topic(pid), key.encode(),
                                         encode(enrollment(pid, 1)), HEADERS))
            traffic.manifest["rejected"].append({"partner": pid, "id": None, "key": key,
                                                 "reason": "authorise.type_not_allowed",
                                                 "fault": "poison"})
    for pill in pills:
        messages.insert(rng.randrange(len(messages) + 1), pill)
    traffic.publish(kafka_bootstrap, messages)

    service(kafka_bootstrap, database_url, made, pseudonymiser,
            registry=registry_of(roles)).run(until_caught_up=True)

    report = traffic.verify(database_url, tmp_path, scenario="poison pills of every class",
                            scale=scale, lag_recovery_s=None,
                            classes=len({r["reason"] for r in traffic.manifest["rejected"]}))
    must = Counter(r["reason"] for r in traffic.manifest["rejected"])
    per_partner = Counter(r["partner"] for r in traffic.manifest["rejected"])
    published = [r for pid in made.values()
                 for r in read_topic(kafka_bootstrap, rejects_topic(pid), per_partner[pid])]
    on_topic = Counter(dict(r.headers)["skillsync.reason_code"].decode() for r in published)
    assert on_topic == must
    assert report.counts["must_reject"] == sum(must.values())
    assert len(must) >= 18
