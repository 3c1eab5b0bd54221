"""The portal under a bounded load from wrk: a partner's scorecard with a 1,000,000-event day.

A simulated day is landed into staging as the nightly bench lands it (check_event + COPY) and
loaded by the night's own load; the portal then runs as its own process (`python -m portal`,
two workers) on a scratch database, and `wrk` (Debian's package) in another process asks, over
loopback, for a fixed time with a fixed number of connections:

  baseline   /healthz            the same server answering without the database
  scorecard  /partner/<id>       the partner with the most refusals that day (target p99 < 300 ms)
  refusals   /partner/<id>/refusals   the day's first page of its refused events

with a signed-in partner's session cookie. Requests per second and latency percentiles are
wrk's; the ratio to the baseline comes from the same run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import scoped_engine
from bench.nightly_bench import DEFAULT_DATABASE, land_day, vacuum
from bench.support import drop_database, scratch_database
from infra.local import REPO_ROOT
from portal import accounts
from portal.db import Database
from warehouse.load import load_day

PASSWORD = "portal bench password"
TARGET_P99_MS = 300.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SKILLSYNC_DATABASE_URL": url, "SKILLSYNC_PORTAL_PORT": str(port),
           "SKILLSYNC_PORTAL_WORKERS": str(workers),
           "SKILLSYNC_PORTAL_SESSION_SECRET": "bench session key " * 3,
           "SKILLSYNC_PORTAL_LOG_LEVEL": "WARNING"}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        server = subprocess.Popen([sys.executable, "-m", "portal", "serve"], cwd=REPO_ROOT,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit(f"the portal did not start; see {log}")


def _session_cookie(base: str, username: str) -> str:
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        signed = client.post("/login", data={"username": username, "password": PASSWORD,
                                             "csrf_token": token.group(1)})
        assert signed.status_code == 200 and "/partner/" in str(signed.url), signed.status_code
        return f"skillsync_session={client.cookies['skillsync_session']}"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _millis(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(url: str, cookie: str, *, threads: int, connections: int, seconds: int) -> dict[str, float]:
    """One bounded wrk run: requests/s, latency percentiles (ms), errors."""
    done = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                           "--latency", "--timeout", "10s", "-H", f"Cookie: {cookie}", url],
                          capture_output=True, text=True, check=True, timeout=seconds + 60)
    out = done.stdout
    figures = {"requests/s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
               "requests": float(re.search(r"(\d+) requests in", out).group(1))}  # type: ignore[union-attr]
    for percent in ("50", "90", "99"):
        found = re.search(rf"^\s+{percent}%\s+(\S+)", out, re.MULTILINE)
        figures[f"p{percent} ms"] = _millis(found.group(1)) if found else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non-2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def _land_and_load(url: str, day: date, events: int, seed: int) -> None:
    started = time.perf_counter()
    counts = land_day(url, day, events, seed, {})
    print(f"landed {day}: {counts} in {time.perf_counter() - started:.0f}s", flush=True)
    started = time.perf_counter()
    # Freshly copied tables have no statistics yet; autovacuum would catch up on its own.
    vacuum(url)
    with scoped_engine(url) as engine:
        load_day(engine, day, "bench-portal")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    print(f"loaded in {time.perf_counter() - started:.0f}s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--seconds", type=int, default=30, help="each wrk run's duration")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads")
    parser.add_argument("--workers", type=int, default=2, help="the portal's processes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", metavar="DATABASE",
                        help="measure again on a database an earlier --keep run left")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    server_url = os.environ.get("SKILLSYNC_DATABASE_URL", DEFAULT_DATABASE).replace(
        "+psycopg", "")
    if args.reuse:
        name, url = args.reuse, f"{server_url.rpartition('/')[0]}/{args.reuse}"
    else:
        url, name = scratch_database(server_url, "bench_portal")
    day = date(2026, 6, 15)
    server = None
    try:
        if not args.reuse:
            _land_and_load(url, day, args.events, args.seed)
        with psycopg.connect(url) as conn:
            partner, refused = conn.execute(
                "SELECT partner_id, count(*) FROM staging.rejected WHERE append_day = %s"
                " GROUP BY 1 ORDER BY 2 DESC LIMIT 1", (day,)).fetchone() or ("", 0)
            (events,) = conn.execute("SELECT count(*) FROM staging.events WHERE append_day = %s",
                                     (day,)).fetchone() or (0,)
        print(f"{events:,} events staged on {day}; partner {partner} has {refused:,}"
              f" refusals; database {name}", flush=True)
        db = Database(url, pool_size=1)
        with db.portal() as conn:
            if accounts.load(conn, "bench-partner") is None:
                accounts.create(conn, username="bench-partner", kind="partner",
                                password=PASSWORD, partner_id=partner)
        db.dispose()
        port = _free_port()
        server = _serve(url, port, args.workers, REPO_ROOT / ".local" / "bench" / "portal.log")
        base = f"http://127.0.0.1:{port}"
        cookie = _session_cookie(base, "bench-partner")
        targets = {"baseline /healthz": f"{base}/healthz",
                   "scorecard": f"{base}/partner/{partner}",
                   "refusals": f"{base}/partner/{partner}/refusals?first={day}&last={day}"}
        for target in targets.values():  # warm the pools and caches
            httpx.get(target, headers={"Cookie": cookie}, timeout=30).raise_for_status()
        results = {label: wrk(target, cookie, threads=args.threads,
                              connections=args.connections, seconds=args.seconds)
                   for label, target in targets.items()}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not (args.keep or args.reuse):
            drop_database(server_url, name)

    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds}s, portal with "
          f"{args.workers} workers, {events:,} events staged on {day}")
    print(f"{'page':<20}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for label, r in results.items():
        print(f"{label:<20}{r['requests/s']:>9.1f}{r['p50 ms']:>9.1f}{r['p90 ms']:>9.1f}"
              f"{r['p99 ms']:>9.1f}{r['non-2xx']:>9.0f}")
    baseline = results["baseline /healthz"]["requests/s"]
    for label in ("scorecard", "refusals"):
        print(f"{label} / baseline requests/s: {results[label]['requests/s'] / baseline:.2f}")
    p99 = results["scorecard"]["p99 ms"]
    met = p99 < TARGET_P99_MS and not any(r["non-2xx"] for r in results.values())
    print(f"scorecard p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms): "
          f"{'met' if met else 'MISS'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
