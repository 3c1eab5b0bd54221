"""A three-node KRaft cluster on loopback ports, for tests that kill brokers under load."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka.errors import KafkaError

from adapters.kafka import connect_admin, ensure_topics
from infra.kafka import service
from infra.local import LocalServices
from infra.process import ServiceError, port_open, read_pid, spawn, terminate, wait_until


@dataclass(frozen=True)
class Node:
    node_id: int
    port: int
    controller_port: int
    home: Path

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"


class LocalCluster:
    """Nodes that are brokers and controllers at once, replicating with `min_insync` acks.

    Construction does no I/O; `start` resolves the jars (as the single broker does), formats
    each node's storage with one cluster id once, and starts every node.
    """

    def __init__(self, state_dir: Path, ports: Sequence[tuple[int, int]], *,
                 min_insync: int = 2, heap_mb: int = 256) -> None:
        self.nodes = [Node(i, port, cport, state_dir / f"node-{i}")
                      for i, (port, cport) in enumerate(ports, start=1)]
        self.replication = len(self.nodes)
        self.min_insync = min_insync
        self._state_dir = state_dir
        self._heap_mb = heap_mb

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def _settings(self, node: Node) -> LocalServices:
        return LocalServices(state_dir=node.home, kafka_port=node.port,
                             kafka_controller_port=node.controller_port,
                             kafka_heap_mb=self._heap_mb)

    def _properties(self, node: Node) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        return "\n".join([
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{node.port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={node.home / 'kafka' / 'data'}",
            *service.COMMON_PROPERTIES,
            f"default.replication.factor={self.replication}",
            f"min.insync.replicas={self.min_insync}",
            # An out-of-sync replica never becomes leader: that would drop acknowledged records.
            "unclean.leader.election.enable=false",
            f"offsets.topic.replication.factor={self.replication}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={self.replication}",
            f"transaction.state.log.min.isr={self.min_insync}",
            f"share.coordinator.state.topic.replication.factor={self.replication}",
            f"share.coordinator.state.topic.min.isr={self.min_insync}",
            "",
        ])

    def start(self) -> None:
        jars = service.ensure_jars(self._settings(self.nodes[0]))
        cluster_id_file = self._state_dir / "cluster.id"
        if not cluster_id_file.exists():
            self._state_dir.mkdir(parents=True, exist_ok=True)
            cluster_id_file.write_text(service.new_cluster_id())
        cluster_id = cluster_id_file.read_text().strip()
        for node in self.nodes:
            self._prepare(node, jars, cluster_id)
        for node in self.nodes:
            self._spawn(node, jars)
        for node in self.nodes:
            self._wait_ready(node)

    def _prepare(self, node: Node, jars: Path, cluster_id: str) -> None:
        cfg = self._settings(node)
        cfg.kafka_dir.mkdir(parents=True, exist_ok=True)
        (cfg.kafka_dir / "server.properties").write_text(self._properties(node))
        (cfg.kafka_dir / "log4j2.properties").write_text(service.LOG4J2_CONFIG)
        if (cfg.kafka_dir / "data" / "meta.properties").exists():
            return
        done = subprocess.run(
            service.java_command(cfg, jars, "kafka.tools.StorageTool", "format",
                                 service.cluster_id_option(cluster_id),
                                 "-c", str(cfg.kafka_dir / "server.properties")),
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"formatting node {node.node_id} failed:\n{done.stderr}")

    def _spawn(self, node: Node, jars: Path) -> None:
        cfg = self._settings(node)
        command = service.java_command(cfg, jars, "kafka.Kafka",
                                       str(cfg.kafka_dir / "server.properties"))
        spawn(command,
              log_file=cfg.kafka_dir / "kafka.log", pid_file=node.pid_file)

    def _wait_ready(self, node: Node) -> None:
        wait_until(lambda: port_open(node.port), timeout=90, what=f"Kafka node {node.node_id}",
                   log_file=self._settings(node).kafka_dir / "kafka.log",
                   alive=lambda: read_pid(node.pid_file) is not None)

    def node(self, node_id: int) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no controlled shutdown, no flush, no goodbye to the quorum."""
        node = self.node(node_id)
        pid = read_pid(node.pid_file)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_until(lambda: not port_open(node.port), timeout=30,
                       what=f"node {node_id} to die",
                       log_file=self._settings(node).kafka_dir / "kafka.log")

    def restart(self, node_id: int) -> None:
        node = self.node(node_id)
        self._spawn(node, service.jar_dir(self._settings(node)))
        self._wait_ready(node)

    def stop(self) -> None:
        """Kill every node. A test's cluster is thrown away, and waiting for a controlled
        shutdown cost 20 s: the last node's shutdown waits for a quorum already gone."""
        for node in self.nodes:
            terminate(node.pid_file, grace=0)

    def create_topics(self, names: Iterable[str], *, partitions: int = 3) -> None:
        """Topics replicated on every node, writable while `min_insync` replicas keep up."""
        ensure_topics(self.bootstrap, names, partitions=partitions, replication=self.replication,
                      min_insync=self.min_insync)

    def replicas(self, topics: Iterable[str]) -> dict[tuple[str, int], tuple[int, list[int]]]:
        """Each partition's leader and in-sync replicas (leader -1 while none is elected)."""
        admin = connect_admin(self.bootstrap)
        try:
            return {(d["name"], p["partition_index"]): (int(p["leader_id"]), sorted(p["isr_nodes"]))
                    for d in admin.describe_topics(list(topics)) for p in d["partitions"]}
        finally:
            admin.close()

    def wait_in_sync(self, topics: Iterable[str], *, timeout: float = 120.0) -> None:
        """Until every partition of the topics has a leader and all its replicas in sync."""
        wanted = list(topics)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(KafkaError, ServiceError):
                state = self.replicas(wanted)
                if state and all(leader >= 0 and len(isr) == self.replication
                                 for leader, isr in state.values()):
                    return
            if time.monotonic() > deadline:
                raise ServiceError(f"replicas of {wanted} not in sync after {timeout:.0f}s")
            time.sleep(0.5)
