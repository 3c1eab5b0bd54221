"""The ingest benchmark runs end to end on the test services and reports every measure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import Services

BENCH = Path(__file__).resolve().parents[3] / "bench" / "ingest_bench.py"


def test_the_ingest_benchmark_lands_every_event_and_reports_each_ratio(
    services: Services,
) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap,
           "SKILLSYNC_DATABASE_URL": services.admin_url}
    result = subprocess.run(
        [sys.executable, str(BENCH), "--events", "3000", "--batch-size", "500", "--rounds", "1"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )

    # Exit 1 is a missed target (this machine misses one), but also a crash: the summary
    # below prints only once every round passed the bench's own checks (the first ingest
    # landed every event, the replay none, the COPY every row).
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert "\nmedian ratio" in result.stdout, result.stderr[-2000:]
    for measure in ("vs bare consume", "vs bare COPY", "replay vs first"):
        assert re.search(rf"^{measure} +\d+\.\d\d +>= ", result.stdout, re.MULTILINE), measure
    assert re.search(r"^consumer peak RSS +\d+ +<= 300", result.stdout, re.MULTILINE)
    assert "CPU per event during a first ingest" in result.stdout
