"""The demo's sync feed: the relay beside the night, then every subscriber's mirror checked."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from infra.local import REPO_ROOT


def start_relay(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m warehouse.relay`, running while nightly_sync waits for it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "warehouse.relay"], env=dict(env),
                                cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)


def stop_relay(relay: subprocess.Popen[bytes]) -> None:
    relay.terminate()
    try:
        relay.wait(timeout=30)
    except subprocess.TimeoutExpired:
        relay.kill()


def check_mirrors(env: Mapping[str, str], folder: Path) -> bool:
    """Follow each subscriber's feed into a fresh SQLite mirror (`python -m partners follow
    --once`) and compare it with the warehouse's view under the subscriber's role; one line
    each. True when every mirror is caught up and equal."""
    from adapters.database import scoped_engine
    from partners.follow import Mirror
    from warehouse.feed_views import subscriber_view
    from warehouse.outbox import subscriptions

    folder.mkdir(parents=True, exist_ok=True)
    with scoped_engine(env["SKILLSYNC_DATABASE_URL"]) as engine, engine.begin() as conn:
        views = {s.subscriber: subscriber_view(conn, s) for s in subscriptions()}
        published: dict[str, int] = dict(conn.exec_driver_sql(
            "SELECT subscriber, coalesce(relayed_version, 0) FROM ops.feed_relay").all())
    all_ok = True
    print(f"\n{'subscriber':<16} {'published':>9}  mirror")
    for subscriber, view in sorted(views.items()):
        path = folder / f"{subscriber}.sqlite"
        path.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "partners", "follow", subscriber, "--once",
             "--mirror", f"sqlite:///{path}"], env=dict(env), cwd=REPO_ROOT,
            capture_output=True, text=True, check=False)
        mirror = Mirror(f"sqlite:///{path}")
        try:
            equal = done.returncode == 0 and mirror.rows() == view
        finally:
            mirror.close()
        caught_up = done.returncode == 0 and "caught up" in done.stdout
        all_ok &= equal and caught_up
        print(f"{subscriber:<16} {published.get(subscriber, 0):>9}  "
              f"{'caught up' if caught_up else 'NOT caught up'}, "
              f"{len(view):,} records, equals the warehouse view: "
              f"{'ok' if equal else 'MISMATCH'}")
    return all_ok
