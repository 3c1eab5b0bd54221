"""What the benchmarks read from /proc: CPU of processes and servers, who listens on a port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from bench.support import (
    CpuSampler,
    ServerCpu,
    listening_pid,
    process_cpu_seconds,
    serves,
)

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_a_sampled_counter_is_read_between_samples_by_interpolation() -> None:
    sampler = CpuSampler({})
    sampler.samples = [(10.0, {"cpu": 1.0}), (11.0, {"cpu": 3.0}), (12.0, {"cpu": 3.5})]

    assert sampler.at(10.5)["cpu"] == pytest.approx(2.0)
    assert sampler.between(10.25, 11.5)["cpu"] == pytest.approx(3.25 - 1.5)
    # Outside the sampled span the nearest sample stands.
    assert sampler.at(20.0)["cpu"] == pytest.approx(3.5)


def test_a_sampler_keeps_the_last_value_of_a_process_that_has_gone() -> None:
    readings = iter([1.0, 2.0])

    def counter() -> float:
        value = next(readings, None)
        if value is None:
            raise ProcessLookupError
        return value

    sampler = CpuSampler({"cpu": counter})
    sampler._sample()
    sampler._sample()
    sampler._sample()

    assert [values["cpu"] for _, values in sampler.samples] == [1.0, 2.0, 2.0]


def test_a_servers_cpu_keeps_what_a_child_spent_after_the_child_exits() -> None:
    server = ServerCpu(os.getpid())
    before = server()
    child = subprocess.Popen([sys.executable, "-c", BURN + "\ntime.sleep(0.5)"])
    time.sleep(0.1)
    while process_cpu_seconds(child.pid) < 0.3:  # read while it burns, as a sampler would
        server()
        time.sleep(0.05)
    server()
    child.wait()

    # A backend that exits mid-run still counts for PostgreSQL.
    assert server() - before >= 0.3


@pytest.mark.parametrize(("title", "counted"), [
    ("postgres: postgres mine 127.0.0.1(40222) COPY", True),
    ("postgres: postgres theirs 127.0.0.1(40222) idle", False),
    ("postgres: loader mine [local] idle in transaction", True),
    ("postgres: autovacuum worker mine", True),
    ("postgres: autovacuum worker theirs", False),
    ("postgres: walwriter ", True),
    ("postgres: checkpointer ", True),
    ("postgres: autovacuum launcher ", True),
    ("/usr/lib/postgresql/bin/postgres -D /data -p 5432", True),
])
def test_a_servers_cpu_counts_its_own_processes_and_the_databases_backends_only(
        title: str, counted: bool) -> None:
    assert serves(title, "mine") is counted


def test_the_process_listening_on_a_port_is_found() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        assert listening_pid(port) == os.getpid()
    assert listening_pid(port) is None
