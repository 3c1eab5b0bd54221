"""Seeded partner traffic with recorded acknowledgements, checked by the verifier afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer
from kafka.errors import KafkaError

from infra.local import REPO_ROOT
from partners.faults import Faults
from partners.simulate import OutgoingMessage, Simulation, simulate
from quality.verify import Ack, Report, verify, write_acks
from tests.support.consumers import ConsumerProcess, wait_for
from tests.support.nightly import registry_of
from tests.support.seed import draw_day

RESULTS = REPO_ROOT / ".local" / "test" / "fault-results.jsonl"
# Bad input of every class the simulator knows, beside the valid traffic and its duplicates.
TRAFFIC_FAULTS = Faults(duplicate_rate=0.02, malformed=3, schema_violations=6, bad_checksums=2,
                        foreign_source=2, forbidden_types=2)
# The stated bound: once a fault is over, lag must be back to zero within this many seconds.
LAG_BOUND_S = 180.0


@dataclass(frozen=True)
class Scale:
    name: str
    events: int  # simulated lifecycle events; the messages add totals, copies and bad input
    rounds: int  # how many times a scenario repeats its fault
    traffic_s: float  # how long partners keep publishing while faults are injected


SHORT = Scale("short", events=1_500, rounds=2, traffic_s=20)
LONG = Scale("long", events=10_000, rounds=5, traffic_s=60)


@dataclass
class Traffic:
    """One seeded simulation for the test's own partners, and what the broker acknowledged."""

    partners: dict[str, str]  # role -> partner id, as the consumer helpers take them
    simulation: Simulation
    acks: list[Ack] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def simulated(cls, partners: Mapping[str, str], scale: Scale, seed: int,
                  faults: Faults = TRAFFIC_FAULTS) -> Traffic:
        registry = registry_of({pid: role.split("#")[0] for role, pid in partners.items()})
        # A past day, drawn from the seed: every event happened before the broker appends it.
        first = draw_day(random.Random(seed))
        return cls(dict(partners), simulate(first, scale.events, seed, faults, 1,
                                            registry=registry))

    @property
    def messages(self) -> list[OutgoingMessage]:
        return list(self.simulation.messages)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.simulation.manifest

    def publish(self, bootstrap: str, messages: Sequence[OutgoingMessage] | None = None, *,
                chunk: int = 0, pause_s: float = 0.0, deadline_s: float = 300.0) -> int:
        """Send like a partner: re-send whatever was not acknowledged until all of it is.

        `chunk` and `pause_s` spread the traffic out, so that a fault meets it under load.
        """
        pending = list(self.messages if messages is None else messages)
        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all",
                                 enable_idempotence=True, linger_ms=5, request_timeout_ms=10_000,
                                 max_request_size=2 * 1024 * 1024,
                                 max_block_ms=10_000, reconnect_backoff_max_ms=1000)
        deadline = time.monotonic() + deadline_s
        sent = 0
        try:
            while pending:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{len(pending)} messages never acknowledged")
                step = pending[:chunk] if chunk else pending
                failed = self._send(producer, step)
                sent += len(step) - len(failed)
                pending = failed + pending[len(step):]
                if failed:
                    time.sleep(1.0)
                elif pause_s:
                    time.sleep(pause_s)
        finally:
            producer.close(timeout=10)
        return sent

    def _send(self, producer: KafkaProducer,
              messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        futures = []
        failed: list[OutgoingMessage] = []
        for message in messages:
            try:
                futures.append((message, producer.send(message.topic, message.value,
                                                       key=message.key,
                                                       headers=list(message.headers))))
            except KafkaError:
                failed.append(message)
        with contextlib.suppress(KafkaError):
            producer.flush(timeout=60)
        acked = []
        for message, future in futures:
            try:
                meta = future.get(timeout=60)
            except KafkaError:
                failed.append(message)
                continue
            acked.append(Ack.of(meta.topic, meta.partition, meta.offset, message.key,
                                message.value, meta.timestamp))
        with self._lock:
            self.acks.extend(acked)
        return failed

    def publish_in_transactions(self, bootstrap: str, *, chunk: int = 50,
                                abort_every: int = 4) -> int:
        """Send like a partner with exactly-once on: each chunk is one transaction.

        Every `abort_every`-th chunk is first sent in a transaction that is aborted (its
        records never land), then again in one that commits. Only committed sends are
        acknowledgements; every partition's log ends with a transaction marker.
        """
        producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all",
                                 enable_idempotence=True, linger_ms=5,
                                 transactional_id=f"partners-{sorted(self.partners.values())[0]}",
                                 max_request_size=2 * 1024 * 1024)
        producer.init_transactions()
        messages = self.messages
        sent = 0
        try:
            for number, start in enumerate(range(0, len(messages), chunk)):
                step = messages[start:start + chunk]
                if abort_every and number % abort_every == abort_every - 1:
                    producer.begin_transaction()
                    for message in step:
                        producer.send(message.topic, message.value, key=message.key,
                                      headers=list(message.headers))
                    producer.abort_transaction()
                producer.begin_transaction()
                futures = [(message, producer.send(message.topic, message.value,
                                                   key=message.key,
                                                   headers=list(message.headers)))
                           for message in step]
                producer.commit_transaction()
                acked = []
                for message, future in futures:
                    meta = future.get(timeout=60)
                    acked.append(Ack.of(meta.topic, meta.partition, meta.offset, message.key,
                                        message.value, meta.timestamp))
                with self._lock:
                    self.acks.extend(acked)
                sent += len(step)
        finally:
            producer.close(timeout=10)
        return sent

    def publish_in_background(self, bootstrap: str, *, over_s: float,
                              chunk: int = 100) -> threading.Thread:
        """Publish the traffic spread over about `over_s` seconds, from a thread."""
        errors: list[BaseException] = []
        pause_s = over_s / max(1, len(self.simulation) // chunk)

        def run() -> None:
            try:
                self.publish(bootstrap, chunk=chunk, pause_s=pause_s)
            except BaseException as exc:
                errors.append(exc)
                raise

        thread = threading.Thread(target=run, name="partner-publisher", daemon=True)
        thread.errors = errors  # type: ignore[attr-defined]
        thread.start()
        return thread

    def lag(self, database_url: str) -> int:
        """Acknowledged messages not yet behind a landed position."""
        with self._lock:
            ends: dict[tuple[str, int], int] = {}
            for ack in self.acks:
                key = (ack.topic, ack.partition)
                ends[key] = max(ends.get(key, 0), ack.offset + 1)
        with psycopg.connect(database_url) as conn:
            landed = {(t, p): o for t, p, o in conn.execute(
                "SELECT topic, partition, max(next_offset) FROM staging.consumer_offsets "
                "WHERE topic = ANY(%s) GROUP BY 1, 2", (sorted({t for t, _ in ends}),))}
        return sum(max(0, end - landed.get(tp, 0)) for tp, end in ends.items())

    def wait_caught_up(self, database_url: str, *, consumer: ConsumerProcess | None = None,
                       bound_s: float = LAG_BOUND_S) -> float:
        """Seconds until lag is zero; fails the test past the stated bound, or at once if the
        one consumer that should catch up has exited (naming its last words)."""
        started = time.monotonic()

        def caught_up() -> bool:
            if consumer is not None and consumer.proc.poll() is not None:
                last_words = "\n".join(consumer.log_lines()[-40:])
                raise AssertionError(f"the consumer exited ({consumer.proc.returncode}) with "
                                     f"lag {self.lag(database_url)}:\n{last_words}")
            return self.lag(database_url) == 0

        wait_for(caught_up, timeout=bound_s,
                 what=f"consumer lag back to zero within {bound_s:.0f}s")
        return round(time.monotonic() - started, 1)

    def verify(self, database_url: str, tmp_path: Path, *, scenario: str, scale: Scale,
               lag_recovery_s: float | None = None, **extra: object) -> Report:
        """Check the run with the verifier, record the figures, fail on anything wrong."""
        manifest_path = tmp_path / "manifest.json"
        manifest_path.write_bytes(self.simulation.manifest_json())
        write_acks(manifest_path.with_suffix(".acks.jsonl"), self.acks)
        report = verify(database_url, self.manifest, self.acks)
        record(scenario, scale, report, lag_recovery_s=lag_recovery_s, **extra)
        assert report.ok, report.render()
        return report


def record(scenario: str, scale: Scale, report: Report, **extra: object) -> None:
    """Append a scenario's figures to the results file docs/reliability.md quotes."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as out:
        out.write(json.dumps({
            "scenario": scenario, "scale": scale.name, "ok": report.ok,
            # When the run happened, for the record only: nothing checked depends on it.
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **report.summary(), **extra}) + "\n")


def hooked_consumer(env: Mapping[str, str], log_path: Path, *args: str,
                    module: str = "tests.fault.crashing_consumer", **hooks: str) -> ConsumerProcess:
    """`python -m consumers` with a test-only fault hook (see tests/fault/crashing_consumer.py
    and tests/fault/wedging_consumer.py).

    hooks: crash="before_commit:3", stall="2:/path/to/release-file" or
    wedge="stuck_io:2:/path/to/marker".
    """
    hooked = {**env, **{f"SKILLSYNC_FAULT_{k.upper()}": v for k, v in hooks.items()}}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *(args or ("run",))],
            env=hooked, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=log)
    return ConsumerProcess(proc, log_path)


def finish_publishing(publisher: threading.Thread, *, timeout: float) -> None:
    """Wait for `publish_in_background` to end; fail the test if it failed or never ended."""
    publisher.join(timeout=timeout)
    assert not publisher.is_alive(), f"partners still publishing after {timeout:.0f}s"
    assert not publisher.errors  # type: ignore[attr-defined]


def kill_hard(pid: int | None) -> None:
    """SIGKILL a service's whole process group, as a crashed machine would."""
    # Without a pid, killpg(0) would take down the test run's own process group.
    assert pid, "the service to kill is not running"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
