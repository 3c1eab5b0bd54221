"""What the benchmarks share: scratch databases, and the CPU and memory of processes."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def scratch_database(server_url: str, prefix: str, *, migrate: bool = True) -> tuple[str, str]:
    """Create (and migrate, unless told not to) a database of the benchmark's own; (URL, name)."""
    from warehouse.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{server_url.rpartition('/')[0]}/{name}"
    try:
        if migrate:
            upgrade(url)
    except BaseException:
        drop_database(server_url, name)
        raise
    return url, name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def peak_rss_mb(pid: int | None = None) -> float:
    """A process's peak resident memory (VmHWM) in MB; this process's by default.

    ProcessLookupError once the process is gone.
    """
    try:
        status = Path(f"/proc/{pid or 'self'}/status").read_text()
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (idle and iowait not)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def process_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """A process's CPU seconds (all its threads); with the children it has reaped, if asked.

    ProcessLookupError once the process is gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    # Fields after the command name: state is the 3rd field, utime the 14th ... cstime the 17th.
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def serves(title: str, database: str) -> bool:
    """Whether a PostgreSQL process, by its title, works for the database or the whole server."""
    words = title.split()
    if words[:1] != ["postgres:"]:
        return True  # the postmaster
    if words[1:3] == ["autovacuum", "worker"]:
        return words[3:4] == [database]
    # A backend's title: "postgres: <user> <database> <host>(<port>) <activity>".
    if len(words) >= 4 and ("(" in words[3] or words[3] == "[local]"):
        return words[2] == database
    return True  # WAL writer, checkpointer, background writer, launchers, I/O workers


class ServerCpu:
    """CPU seconds of a PostgreSQL server on behalf of one database, as a growing counter.

    Counts the postmaster, the server's own processes (WAL writer, checkpointer, ...) and the
    backends and autovacuum workers of that database (all databases if None), read from each
    process's title; other databases' backends on a shared server are left out. A process that
    exits keeps the CPU it had when last read, so call it often (CpuSampler does).
    """

    def __init__(self, postmaster: int, database: str | None = None) -> None:
        self._postmaster = postmaster
        self._database = database
        self._seen: dict[int, float] = {}

    def _counts(self, pid: int) -> bool:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, UnicodeDecodeError):
            return False
        return self._database is None or serves(title, self._database)

    def __call__(self) -> float:
        children = Path(f"/proc/{self._postmaster}/task/{self._postmaster}/children")
        for pid in [self._postmaster, *map(int, children.read_text().split())]:
            if self._counts(pid):
                # One that exited since the list was read keeps its last reading.
                with contextlib.suppress(ProcessLookupError):
                    self._seen[pid] = process_cpu_seconds(pid)
        return sum(self._seen.values())


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port (any address), from /proc; None if none is."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


class CpuSampler:
    """Samples CPU-second counters on a thread, to read any of them at any instant later.

    Each counter is a function returning CPU seconds; one that stops answering (its process
    exited) keeps its last value. Readings between two samples are interpolated.
    """

    def __init__(self, counters: Mapping[str, Callable[[], float]], interval_s: float = 0.1):
        self._counters = dict(counters)
        self._interval = interval_s
        self._last: dict[str, float] = {}
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _sample(self) -> None:
        values = {}
        for name, read in self._counters.items():
            try:
                self._last[name] = values[name] = read()
            except (ProcessLookupError, FileNotFoundError):
                values[name] = self._last.get(name, 0.0)
        self.samples.append((time.time(), values))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def at(self, when: float) -> dict[str, float]:
        """Every counter at a wall-clock instant (epoch seconds) within the sampled span."""
        before = max((s for s in self.samples if s[0] <= when), key=lambda s: s[0],
                     default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= when), key=lambda s: s[0],
                    default=self.samples[-1])
        span = after[0] - before[0]
        share = (when - before[0]) / span if span > 0 else 0.0
        return {name: before[1][name] + share * (after[1][name] - before[1][name])
                for name in before[1]}

    def peak(self, prefix: str) -> float:
        """The largest value any counter named with the prefix ever had (a peak memory)."""
        return max((value for _, values in self.samples for name, value in values.items()
                    if name.startswith(prefix)), default=float("nan"))

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each counter spent from start to end (epoch seconds)."""
        first, last = self.at(start), self.at(end)
        return {name: last[name] - first[name] for name in first}
