"""The secured local broker: listeners, principals, SCRAM credentials, ACLs from the registry."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from adapters.kafka import connect_admin
from infra.kafka.tls import Authority, write_private
from infra.local import LocalServices
from infra.process import ServiceError
from schemas.partners import PartnerRegistry
from schemas.topics import events_topic, rejects_topic, sync_topic

SCRAM_MECHANISM = "SCRAM-SHA-512"
# Certificate subjects of the two super users; Kafka names a TLS principal by its full DN.
BROKER_SUBJECT = "skillsync-broker"
ADMIN_SUBJECT = "skillsync-admin"
SUPER_USERS = (f"User:CN={BROKER_SUBJECT}", f"User:CN={ADMIN_SUBJECT}")
PIPELINE_PRINCIPAL = "skillsync.pipeline"
# Covers the ingestion group and any replay group an operator names after it.
PIPELINE_GROUP_PREFIX = "skillsync-ingest"
# Partner ids never hold a dot, so no partner principal can be named like the pipeline's.
PARTNER_PRINCIPAL_PREFIX = "partner."
# A subscriber reads its sync feed as a user of its own, which may do nothing else.
SUBSCRIBER_PRINCIPAL_PREFIX = "sync."


def partner_principal(partner_id: str) -> str:
    return PARTNER_PRINCIPAL_PREFIX + partner_id


def subscriber_principal(subscriber: str) -> str:
    return SUBSCRIBER_PRINCIPAL_PREFIX + subscriber


@dataclass(frozen=True)
class SecretFiles:
    """Where the secured broker's key material and the principals' passwords live (all 0600)."""

    root: Path

    @property
    def ca_certificate(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def broker_keystore(self) -> Path:
        return self.root / "broker.pem"

    @property
    def admin_certificate(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"

    @property
    def passwords(self) -> Path:
        return self.root / "principals.json"

    @property
    def pipeline_env(self) -> Path:
        return self.root / "pipeline.env"


def secret_files(cfg: LocalServices) -> SecretFiles:
    return SecretFiles(cfg.kafka_secrets_dir)


def ensure_certificates(cfg: LocalServices) -> SecretFiles:
    """The local CA, the broker's keystore and the operator's client certificate, made once."""
    files = secret_files(cfg)
    if files.ca_certificate.exists() and files.ca_key.exists():
        authority = Authority.load(files.ca_certificate, files.ca_key)
    else:
        authority = Authority.create("skillsync local CA")
        write_private(files.ca_key, authority.key_pem())
        write_private(files.ca_certificate, authority.certificate_pem())
    if not files.broker_keystore.exists():
        key, certificate = authority.issue(BROKER_SUBJECT)
        write_private(files.broker_keystore, key + certificate)
    if not (files.admin_certificate.exists() and files.admin_key.exists()):
        key, certificate = authority.issue(ADMIN_SUBJECT)
        write_private(files.admin_key, key)
        write_private(files.admin_certificate, certificate)
    return files


def listener_properties(cfg: LocalServices) -> list[str]:
    """server.properties lines for the secured listeners, TLS material and authorizer."""
    files = secret_files(cfg)
    host = "127.0.0.1"
    listeners = {
        "SASL": ("SASL_PLAINTEXT", cfg.kafka_port),
        "TLS": ("SASL_SSL", cfg.kafka_tls_port),
        "INTERNAL": ("SSL", cfg.kafka_internal_port),
    }
    if cfg.kafka_plaintext_port is not None:
        listeners["PLAINTEXT"] = ("PLAINTEXT", cfg.kafka_plaintext_port)
    advertised = ",".join(f"{name}://{host}:{port}" for name, (_, port) in listeners.items())
    protocols = ",".join(f"{name}:{protocol}" for name, (protocol, _) in listeners.items())
    scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    mechanism = SCRAM_MECHANISM.lower()
    return [
        f"listeners={advertised},CONTROLLER://{host}:{cfg.kafka_controller_port}",
        f"advertised.listeners={advertised}",
        "controller.listener.names=CONTROLLER",
        f"listener.security.protocol.map={protocols},CONTROLLER:SSL",
        # The broker talks to itself and its controller over mutual TLS: no password to leak.
        "inter.broker.listener.name=INTERNAL",
        "listener.name.internal.ssl.client.auth=required",
        "listener.name.controller.ssl.client.auth=required",
        f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
        f"listener.name.sasl.{mechanism}.sasl.jaas.config={scram_login}",
        f"listener.name.tls.{mechanism}.sasl.jaas.config={scram_login}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={files.broker_keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={files.ca_certificate}",
        "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users={';'.join(SUPER_USERS)}",
    ]


def admin_bootstrap(cfg: LocalServices) -> str:
    return f"127.0.0.1:{cfg.kafka_internal_port}"


def admin_options(cfg: LocalServices) -> dict[str, Any]:
    """kafka-python options for the operator: mutual TLS on the internal listener."""
    files = secret_files(cfg)
    return {"security_protocol": "SSL", "ssl_cafile": str(files.ca_certificate),
            "ssl_certfile": str(files.admin_certificate), "ssl_keyfile": str(files.admin_key)}


def scram_options(cfg: LocalServices, principal: str, password: SecretStr, *,
                  tls: bool = True) -> dict[str, Any]:
    """kafka-python options for a principal: SCRAM over TLS, or over the loopback listener."""
    options: dict[str, Any] = {
        "bootstrap_servers": f"127.0.0.1:{cfg.kafka_tls_port if tls else cfg.kafka_port}",
        "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
        "sasl_mechanism": SCRAM_MECHANISM,
        "sasl_plain_username": principal,
        "sasl_plain_password": password.get_secret_value(),
    }
    if tls:
        options["ssl_cafile"] = str(secret_files(cfg).ca_certificate)
    return options


@dataclass(frozen=True)
class Grant:
    """One ALLOW rule: a principal may do an operation on a resource (exact name or prefix)."""

    principal: str
    operation: ACLOperation
    resource: ResourceType
    name: str
    pattern: ACLResourcePatternType = ACLResourcePatternType.LITERAL

    def acl(self) -> ACL:
        return ACL(f"User:{self.principal}", "*", self.operation, ACLPermissionType.ALLOW,
                   ResourcePattern(self.resource, self.name, self.pattern))


def acl_plan(registry: PartnerRegistry) -> list[Grant]:
    """Every ACL the cluster should hold. Anything not granted here is denied.

    Write and read imply describe, and since Kafka 3.0 write on a topic lets an idempotent
    producer start, so no cluster-wide grant is needed by anyone.
    """
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    grants = [Grant(PIPELINE_PRINCIPAL, ACLOperation.READ, group, PIPELINE_GROUP_PREFIX,
                    ACLResourcePatternType.PREFIXED)]
    for partner in registry:
        if partner.feeds:
            reader, feed = subscriber_principal(partner.partner_id), sync_topic(partner.partner_id)
            grants += [
                Grant(reader, ACLOperation.READ, topic, feed),
                # A follower tracking its offsets at the broker names its group after itself.
                Grant(reader, ACLOperation.READ, group, f"{reader}.",
                      ACLResourcePatternType.PREFIXED),
                # The relay writes the feed, and reads its last record to resume after a crash.
                Grant(PIPELINE_PRINCIPAL, ACLOperation.WRITE, topic, feed),
                Grant(PIPELINE_PRINCIPAL, ACLOperation.READ, topic, feed),
            ]
        if not partner.allowed_types:
            continue
        principal = partner_principal(partner.partner_id)
        events, rejects = events_topic(partner.partner_id), rejects_topic(partner.partner_id)
        grants += [
            Grant(principal, ACLOperation.WRITE, topic, events),
            Grant(principal, ACLOperation.READ, topic, rejects),
            # A partner reading its rejects with a consumer group names the group after itself.
            Grant(principal, ACLOperation.READ, group, f"{principal}.",
                  ACLResourcePatternType.PREFIXED),
            Grant(PIPELINE_PRINCIPAL, ACLOperation.READ, topic, events),
            Grant(PIPELINE_PRINCIPAL, ACLOperation.WRITE, topic, rejects),
        ]
    return grants


def principals(registry: PartnerRegistry) -> list[str]:
    return [PIPELINE_PRINCIPAL,
            *(partner_principal(p.partner_id) for p in registry if p.allowed_types),
            *(subscriber_principal(p.partner_id) for p in registry if p.feeds)]


def load_passwords(cfg: LocalServices) -> dict[str, SecretStr]:
    """The principals' SCRAM passwords written by `provision`; empty before the first run."""
    path = secret_files(cfg).passwords
    if not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        # The content is not echoed: it holds passwords.
        raise ServiceError(f"{path} is unreadable ({type(exc).__name__}); delete it and run "
                           "`python -m infra up` again to issue new passwords") from None
    return {name: SecretStr(value) for name, value in stored.items()}


@dataclass(frozen=True)
class Provisioned:
    issued: list[str]
    revoked: list[str]
    acls_created: int
    acls_deleted: int


def provision(cfg: LocalServices, registry: PartnerRegistry) -> Provisioned:
    """Bring principals and ACLs in line with the registry, idempotently.

    New principals get a password (kept in the 0600 passwords file) and a SCRAM credential;
    partners gone from the registry lose both their credential and their ACLs.
    """
    files = secret_files(cfg)
    wanted = principals(registry)
    passwords = load_passwords(cfg)
    fresh = {name: SecretStr(secrets.token_urlsafe(32)) for name in wanted
             if name not in passwords}
    kept = {name: pw for name, pw in passwords.items() if name in wanted}
    current = {**kept, **fresh}
    # Passwords are written first: a credential on the broker that nobody knows is useless.
    _write_passwords(files, current)
    admin = connect_admin(admin_bootstrap(cfg), **admin_options(cfg))
    try:
        on_broker = set(admin.describe_user_scram_credentials())
        managed = {u for u in on_broker if _is_managed(u)}
        stale = sorted(managed - set(wanted))
        upserts = [name for name in wanted if name in fresh or name not in on_broker]
        alterations: list[object] = [
            UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512,
                                         current[name].get_secret_value())
            for name in upserts]
        alterations += [UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)
                        for name in stale]
        if alterations:
            failed = {user: error for user, error in
                      admin.alter_user_scram_credentials(alterations).items() if error}
            if failed:
                raise ServiceError(f"SCRAM credentials not stored for {sorted(failed)}: "
                                   f"{next(iter(failed.values()))}")
        created, deleted = _sync_acls(admin, acl_plan(registry))
    finally:
        admin.close()
    _write_pipeline_env(cfg, files, current[PIPELINE_PRINCIPAL])
    return Provisioned(issued=sorted(upserts), revoked=stale, acls_created=created,
                       acls_deleted=deleted)


def _is_managed(user: str) -> bool:
    return user == PIPELINE_PRINCIPAL or user.startswith(
        (PARTNER_PRINCIPAL_PREFIX, SUBSCRIBER_PRINCIPAL_PREFIX))


def _acl_key(acl: ACLFilter) -> tuple[object, ...]:
    pattern = acl.resource_pattern
    return (acl.principal, acl.host, int(acl.operation), int(acl.permission_type),
            int(pattern.resource_type), pattern.resource_name, int(pattern.pattern_type))


def _sync_acls(admin: KafkaAdminClient, plan: Iterable[Grant]) -> tuple[int, int]:
    wanted = {_acl_key(acl): acl for acl in (grant.acl() for grant in plan)}
    everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(
                               ResourceType.ANY, None, ACLResourcePatternType.ANY))
    existing, _ = admin.describe_acls(everything)
    have = {_acl_key(acl): acl for acl in existing}
    # Only rules of the principals this module manages are removed; others are an operator's.
    stale = [acl for key, acl in have.items()
             if key not in wanted and _is_managed(str(acl.principal).removeprefix("User:"))]
    missing = [acl for key, acl in wanted.items() if key not in have]
    if missing:
        outcome = admin.create_acls(missing)
        if outcome["failed"]:
            raise ServiceError(f"{len(outcome['failed'])} ACLs were refused: "
                               f"{outcome['failed'][0]}")
    if stale:
        admin.delete_acls(stale)
    return len(missing), len(stale)


def _write_passwords(files: SecretFiles, passwords: dict[str, SecretStr]) -> None:
    document = {name: pw.get_secret_value() for name, pw in sorted(passwords.items())}
    write_private(files.passwords, (json.dumps(document, indent=2) + "\n").encode())


def _write_pipeline_env(cfg: LocalServices, files: SecretFiles, password: SecretStr) -> None:
    """Consumer settings for the pipeline principal: `SKILLSYNC_ENV_FILE=<this file>`."""
    lines = [
        f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{cfg.kafka_tls_port}",
        "SKILLSYNC_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        f"SKILLSYNC_KAFKA_SASL_MECHANISM={SCRAM_MECHANISM}",
        f"SKILLSYNC_KAFKA_SASL_USERNAME={PIPELINE_PRINCIPAL}",
        f"SKILLSYNC_KAFKA_SASL_PASSWORD={password.get_secret_value()}",
        f"SKILLSYNC_KAFKA_SSL_CAFILE={files.ca_certificate}",
        f"SKILLSYNC_CONSUMER_GROUP={PIPELINE_GROUP_PREFIX}",
    ]
    write_private(files.pipeline_env, ("\n".join(lines) + "\n").encode())
