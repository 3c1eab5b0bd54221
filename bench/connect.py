"""Kafka Connect standalone with the Debezium JDBC sink: resolved from Maven Central, run once."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from infra.local import LocalServices
from infra.process import ServiceError

PEER = Path(__file__).resolve().parent / "peer"
POM = PEER / "pom.xml"
# Maven Central only: Debezium's poms name another repository.
MAVEN_SETTINGS = PEER / "maven-settings.xml"
# 3.6.1.Final is not served; 3.6.0.Final is built against Connect 4.3 (the pom's runtime).
SINK_PLUGIN = "io.debezium:debezium-connector-jdbc:3.6.0.Final:tar.gz:plugin"
SINK_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"
SINK_COLUMNS = ("__connect_topic", "__connect_partition", "__connect_offset", "payload")
# The heap and collector settings connect-standalone.sh starts a worker with.
JVM_OPTIONS = ("-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
               "-Djava.awt.headless=true")
LOG4J2_CONFIG = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
"""


def cache_dir(cfg: LocalServices) -> Path:
    """Beside the broker's jars, outside the work tree; keyed by what decides its content."""
    digest = hashlib.sha256(POM.read_bytes() + MAVEN_SETTINGS.read_bytes()
                            + SINK_PLUGIN.encode()).hexdigest()[:12]
    return cfg.jar_cache_dir.parent / "connect-peer" / digest


def _mvn(*args: str) -> None:
    done = subprocess.run(["mvn", "-q", "-B", "-s", str(MAVEN_SETTINGS), *args],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"mvn could not resolve the Connect peer:\n{done.stdout}\n{done.stderr}")


def ensure_resolved(cfg: LocalServices) -> Path:
    """The cache holding jars/ (the Connect runtime) and plugins/ (the sink); resolved once."""
    target = cache_dir(cfg)
    if (target / ".complete").exists():
        return target
    if shutil.which("mvn") is None:
        raise ServiceError("Maven (mvn) is needed once to resolve Kafka Connect; install it")
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _mvn("-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={partial / 'jars'}",
         "-DincludeScope=runtime")
    _mvn("dependency:copy", f"-Dartifact={SINK_PLUGIN}", f"-DoutputDirectory={partial}")
    (archive,) = partial.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(partial / "plugins", filter="data")
    archive.unlink()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    (target / ".complete").touch()
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SinkMode:
    """One configuration of the sink the benchmark runs."""

    name: str
    insert_mode: str  # insert | upsert
    batch_size: int = 2000
    rewrite_batched_inserts: bool = False


def worker_properties(bootstrap: str, plugins: Path, state: Path, poll_records: int) -> str:
    return "\n".join([
        f"bootstrap.servers={bootstrap}",
        "key.converter=org.apache.kafka.connect.storage.StringConverter",
        "value.converter=org.apache.kafka.connect.storage.StringConverter",
        f"offset.storage.file.filename={state / 'offsets'}",
        f"plugin.path={plugins}",
        # The default scan of every jar costs ~8 s of start-up and over a GB of memory.
        "plugin.discovery=service_load",
        f"listeners=http://127.0.0.1:{free_port()}",
        # Committed offsets are how the benchmark learns the sink has written everything.
        "offset.flush.interval.ms=1000",
        f"consumer.max.poll.records={poll_records}",
        "consumer.auto.offset.reset=earliest",
        "",
    ])


def connector_properties(name: str, topic: str, partitions: int, jdbc_url: str, table: str,
                         mode: SinkMode) -> str:
    url = jdbc_url + ("&reWriteBatchedInserts=true" if mode.rewrite_batched_inserts else "")
    return "\n".join([
        f"name={name}",
        f"connector.class={SINK_CLASS}",
        f"tasks.max={partitions}",
        f"topics={topic}",
        f"connection.url={url}",
        "connection.username=postgres",
        "connection.password=",
        f"insert.mode={mode.insert_mode}",
        # Schemaless JSON: the whole value as one text column, keyed by its Kafka coordinates.
        "primary.key.mode=kafka",
        "schema.evolution=none",
        f"collection.name.format={table}",
        f"batch.size={mode.batch_size}",
        "transforms=hoist",
        "transforms.hoist.type=org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field=payload",
        "",
    ])


def command(resolved: Path, state: Path, worker: Path, connector: Path) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Java 17+ is needed to run Kafka Connect")
    (state / "log4j2.properties").write_text(LOG4J2_CONFIG)
    return [java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={state / 'log4j2.properties'}",
            "-cp", f"{resolved / 'jars'}/*", "org.apache.kafka.connect.cli.ConnectStandalone",
            str(worker), str(connector)]
