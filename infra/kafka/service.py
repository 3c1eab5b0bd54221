"""Resolve the broker's jars with Maven, format KRaft storage once, start and stop the broker."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable
from pathlib import Path

from adapters.kafka import EVENTS_MAX_MESSAGE_BYTES
from infra.kafka import security
from infra.local import LocalServices
from infra.process import ServiceError, port_open, read_pid, spawn, terminate, wait_until

POM = Path(__file__).with_name("pom.xml")

LOG4J2_CONFIG = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
"""


def jar_dir(cfg: LocalServices) -> Path:
    # Keyed by the pom's content so a version bump resolves afresh instead of mixing jars.
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return cfg.jar_cache_dir / digest


def ensure_jars(cfg: LocalServices) -> Path:
    target = jar_dir(cfg)
    if (target / ".complete").exists():
        return target
    if shutil.which("mvn") is None:
        raise ServiceError("Maven (mvn) is needed once to resolve the Kafka jars; install it")
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    done = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise ServiceError(f"mvn could not resolve the Kafka jars:\n{done.stdout}\n{done.stderr}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    (target / ".complete").touch()
    return target


def _plaintext_listeners(cfg: LocalServices) -> list[str]:
    return [
        f"listeners=PLAINTEXT://127.0.0.1:{cfg.kafka_port},"
        f"CONTROLLER://127.0.0.1:{cfg.kafka_controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{cfg.kafka_port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
    ]


# Settings every local node shares, single broker or cluster.
COMMON_PROPERTIES = (
    # Windows are chosen by broker append time, so the broker stamps every record.
    "log.message.timestamp.type=LogAppendTime",
    "auto.create.topics.enable=false",
    "group.initial.rebalance.delay.ms=0",
    f"message.max.bytes={EVENTS_MAX_MESSAGE_BYTES}",
    # The log cleaner allocates its whole offset map (128 MB by default) when it starts; only
    # the compacted internal topics use it, and on a small local heap it can fail the start-up.
    "log.cleaner.dedupe.buffer.size=16777216",
)


def server_properties(cfg: LocalServices) -> str:
    data = cfg.kafka_dir / "data"
    listeners = (security.listener_properties(cfg) if cfg.kafka_security
                 else _plaintext_listeners(cfg))
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{cfg.kafka_controller_port}",
        *listeners,
        f"log.dirs={data}",
        f"num.partitions={cfg.kafka_partitions}",
        *COMMON_PROPERTIES,
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=10",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=5",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "",
    ])


def java_command(cfg: LocalServices, jars: Path, *args: str) -> list[str]:
    """A JVM command line running a Kafka main class from the resolved jars, heap capped."""
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Java 17+ is needed to run the Kafka broker")
    return [
        java, f"-Xmx{cfg.kafka_heap_mb}m", f"-Xms{min(128, cfg.kafka_heap_mb)}m",
        "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={cfg.kafka_dir / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={cfg.kafka_dir / 'logs'}",
        "-cp", f"{jars}/*", *args,
    ]


def new_cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A random cluster id as Kafka's own tool makes one: a version 4 UUID in URL-safe base64.

    Like Kafka's Uuid.randomUuid, it never starts with "-", which command lines would take for
    an option.
    """
    while True:
        cluster_id = urlsafe_b64encode(
            uuid.UUID(bytes=random_bytes(16), version=4).bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def cluster_id_option(cluster_id: str) -> str:
    """The storage tool's cluster id option in one word, so no id can be read as a flag."""
    return f"--cluster-id={cluster_id}"


def _format_storage(cfg: LocalServices, jars: Path, props: Path) -> None:
    if (cfg.kafka_dir / "data" / "meta.properties").exists():
        return
    done = subprocess.run(
        java_command(cfg, jars, "kafka.tools.StorageTool", "format",
                     cluster_id_option(new_cluster_id()), "-c", str(props)),
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise ServiceError(f"formatting Kafka storage failed:\n{done.stdout}\n{done.stderr}")


def pid_file(cfg: LocalServices) -> Path:
    return cfg.kafka_dir / "kafka.pid"


def status(cfg: LocalServices) -> str:
    pid = read_pid(pid_file(cfg))
    if pid and port_open(cfg.kafka_port):
        return f"running (pid {pid})"
    if port_open(cfg.kafka_port):
        return "running (not started by us)"
    return "stopped"


def start(cfg: LocalServices) -> None:
    if port_open(cfg.kafka_port):
        return
    jars = ensure_jars(cfg)
    cfg.kafka_dir.mkdir(parents=True, exist_ok=True)
    if cfg.kafka_security:
        security.ensure_certificates(cfg)
    props = cfg.kafka_dir / "server.properties"
    props.write_text(server_properties(cfg))
    (cfg.kafka_dir / "log4j2.properties").write_text(LOG4J2_CONFIG)
    _format_storage(cfg, jars, props)
    log = cfg.kafka_dir / "kafka.log"
    pid = spawn(java_command(cfg, jars, "kafka.Kafka", str(props)), log_file=log,
                pid_file=pid_file(cfg))
    wait_until(lambda: port_open(cfg.kafka_port), timeout=90, what="Kafka broker",
               log_file=log, alive=lambda: read_pid(pid_file(cfg)) == pid)


def stop(cfg: LocalServices) -> bool:
    return terminate(pid_file(cfg), grace=30)
