"""The ACL plan drawn from the registry, and which listeners each security setting opens."""

from __future__ import annotations

from pathlib import Path

from kafka.admin import ACLOperation, ACLResourcePatternType, ResourceType

from infra.kafka import security
from infra.kafka.service import server_properties
from infra.local import LocalServices
from schemas.partners import load_registry
from schemas.topics import events_topic, rejects_topic, sync_topic


def _topic_grants(principal: str) -> set[tuple[ACLOperation, str]]:
    return {(g.operation, g.name) for g in security.acl_plan(load_registry())
            if g.principal == principal and g.resource == ResourceType.TOPIC}


def test_each_partner_may_write_only_its_events_and_read_only_its_rejects() -> None:
    for partner in load_registry():
        if not partner.allowed_types:
            assert _topic_grants(security.partner_principal(partner.partner_id)) == set()
            continue
        principal = security.partner_principal(partner.partner_id)
        assert _topic_grants(principal) == {
            (ACLOperation.WRITE, events_topic(partner.partner_id)),
            (ACLOperation.READ, rejects_topic(partner.partner_id)),
        }


def test_each_subscriber_may_read_only_its_own_sync_feed_and_group() -> None:
    subscribers = [p for p in load_registry() if p.feeds]
    assert {p.role for p in subscribers} >= {"district_bureau", "subsidy_office",
                                              "training_platform", "evaluation_org"}
    for partner in subscribers:
        principal = security.subscriber_principal(partner.partner_id)
        grants = [g for g in security.acl_plan(load_registry()) if g.principal == principal]
        assert {(g.operation, g.resource, g.name, g.pattern) for g in grants} == {
            (ACLOperation.READ, ResourceType.TOPIC, sync_topic(partner.partner_id),
             ACLResourcePatternType.LITERAL),
            (ACLOperation.READ, ResourceType.GROUP, f"{principal}.",
             ACLResourcePatternType.PREFIXED)}


def test_the_pipeline_reads_every_partners_events_writes_their_rejects_and_the_feeds() -> None:
    registry = load_registry()
    publishers = [p for p in registry if p.allowed_types]
    feeds = {sync_topic(p.partner_id) for p in registry if p.feeds}
    assert _topic_grants(security.PIPELINE_PRINCIPAL) == (
        {(ACLOperation.READ, events_topic(p.partner_id)) for p in publishers}
        | {(ACLOperation.WRITE, rejects_topic(p.partner_id)) for p in publishers}
        | {(op, t) for t in feeds for op in (ACLOperation.READ, ACLOperation.WRITE)})


def test_no_grant_reaches_the_cluster_or_a_topic_by_prefix_or_wildcard() -> None:
    for grant in security.acl_plan(load_registry()):
        assert grant.resource in (ResourceType.TOPIC, ResourceType.GROUP)
        assert grant.operation in (ACLOperation.READ, ACLOperation.WRITE)
        assert "*" not in grant.name
        if grant.resource == ResourceType.TOPIC:
            assert grant.pattern == ACLResourcePatternType.LITERAL


def test_no_partner_principal_can_be_named_like_the_pipeline() -> None:
    # Partner ids match [a-z0-9_-]+, so "partner.<id>" never equals a dotted service name.
    assert not security.PIPELINE_PRINCIPAL.startswith(security.PARTNER_PRINCIPAL_PREFIX)


def _properties(**settings: object) -> dict[str, str]:
    cfg = LocalServices(state_dir=Path("/nonexistent/state"), **settings)  # type: ignore[arg-type]
    lines = [line for line in server_properties(cfg).splitlines() if "=" in line]
    return dict(line.split("=", 1) for line in lines)


def test_by_default_the_broker_is_plaintext_on_the_kafka_port_without_an_authorizer() -> None:
    props = _properties()

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert "authorizer.class.name" not in props


def test_with_security_on_every_listener_authenticates_and_nothing_is_allowed_by_default() -> None:
    props = _properties(kafka_security=True)

    assert "PLAINTEXT:PLAINTEXT" not in props["listener.security.protocol.map"]
    assert props["advertised.listeners"] == (
        "SASL://127.0.0.1:19092,TLS://127.0.0.1:19094,INTERNAL://127.0.0.1:19095")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:CN=skillsync-broker;User:CN=skillsync-admin"
    assert props["listener.name.internal.ssl.client.auth"] == "required"
    assert props["listener.name.controller.ssl.client.auth"] == "required"


def test_a_plaintext_listener_beside_the_secured_ones_exists_only_when_its_port_is_set() -> None:
    props = _properties(kafka_security=True, kafka_plaintext_port=19096)

    assert "PLAINTEXT://127.0.0.1:19096" in props["advertised.listeners"]
