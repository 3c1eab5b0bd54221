"""The peer benchmark runs the consumer and Kafka Connect's JDBC sink on one topic and reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import Services

BENCH = Path(__file__).resolve().parents[3] / "bench" / "peer_bench.py"
NUMBER = r"[\d,]+(?:\.\d+)?"


def test_the_peer_benchmark_runs_every_side_and_reports_each_target(services: Services) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap,
           "SKILLSYNC_DATABASE_URL": services.admin_url}
    result = subprocess.run(
        [sys.executable, str(BENCH), "--events", "4000", "--batch-size", "500", "--rounds", "1",
         "--sides", "consumer,consumer today,sink insert,sink upsert"],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )

    # Exit 1 is a missed target (at this size the JVM is still warming up), but also a crash:
    # the medians print only once every run landed every event.
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    sides = re.findall(rf"^1 +(\S+(?: \S+)?) +{NUMBER}(?: +-?{NUMBER}){{5}} +(\S+)",
                       result.stdout, re.MULTILINE)
    ran = {side for side, _ in sides}
    assert {"consumer", "bare COPY", "sink insert", "sink upsert"} <= ran, result.stdout
    for measure in ("ingest / sink insert", "ingest / sink upsert", "stack CPU / sink insert",
                    "ingest / bare COPY"):
        assert re.search(rf"^{re.escape(measure)} +\d+\.\d\d ", result.stdout, re.MULTILINE), \
            measure
    if "consumer today" in ran:  # a shallow clone cannot give the revision
        assert re.search(r"^PostgreSQL CPU / today +\d+\.\d\d ", result.stdout, re.MULTILINE)
    assert re.search(r"^consumer peak RSS MB +\d+ +<= 150", result.stdout, re.MULTILINE)
