"""What the benchmarks read from /proc: CPU of processes and servers, who listens on a port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from bench.support import CpuSampler, listening_pid, process_cpu_seconds, server_cpu_seconds

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


def test_a_servers_cpu_includes_the_children_it_has_reaped() -> None:
    own_before = process_cpu_seconds(os.getpid())
    server_before = server_cpu_seconds(os.getpid())

    subprocess.run([sys.executable, "-c", BURN], check=True)

    # The child's 0.3 s of CPU count for the server (it waited for the child), not for the
    # process alone: a backend that exits mid-run still counts for PostgreSQL.
    assert server_cpu_seconds(os.getpid()) - server_before >= 0.25
    assert process_cpu_seconds(os.getpid()) - own_before < 0.25


def test_the_process_listening_on_a_port_is_found() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        assert listening_pid(port) == os.getpid()
    assert listening_pid(port) is None
