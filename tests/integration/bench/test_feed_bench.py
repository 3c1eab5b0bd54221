"""The feed benchmark runs on the test services and reports both of its ratios."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from schemas.partners import REGISTRY_PATH
from tests.conftest import Services

BENCH = Path(__file__).resolve().parents[3] / "bench" / "feed_bench.py"


def test_the_feed_benchmark_relays_and_mirrors_every_change_and_reports_each_ratio(
    services: Services,
) -> None:
    # The bench writes its changes for the shipped registry's subscribers (the tests' own
    # default registry subscribes nobody).
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap,
           "SKILLSYNC_DATABASE_URL": services.admin_url,
           "SKILLSYNC_PARTNERS_REGISTRY": str(REGISTRY_PATH)}
    result = subprocess.run(
        [sys.executable, str(BENCH), "--changes", "3000", "--rounds", "1", "--skip-night"],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )

    # The medians print only after every round's follower applied every change it was sent.
    assert result.returncode == 0, result.stderr[-2000:]
    for measure in ("relay ratio", "mirror ratio", "follow ratio"):
        assert re.search(rf"^  {measure} +\d+\.\d\d ", result.stdout, re.MULTILINE), (
            measure, result.stdout[-2000:])
