"""The check_event benchmark runs on a small mix and reports its ratio and every stage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "validate_bench.py"


def test_the_check_benchmark_reports_its_ratio_and_the_cost_of_each_stage() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--events", "300", "--repeats", "1", "--fixed"],
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert result.returncode == 0, result.stderr
    ratio = re.search(r"^ratio: (\d+\.\d+) \(target >= 0\.25\)$", result.stdout, re.MULTILINE)
    assert ratio is not None and 0 < float(ratio.group(1)) < 1
    stages = re.findall(r"^ +(.+): (\d+\.\d+) µs/event", result.stdout, re.MULTILINE)
    assert [name for name, _ in stages] == [
        "decode into typed structs (loads + convert)",
        "pattern gate (the patterns the typed decode leaves out)",
        "duplicate-key test (re-encode, compare)",
        "data rules of each event's family, learner included",
        "of which the learner (identity, pseudonym, masks)",
        "of which the pseudonym alone (HMAC-SHA256)",
    ]
    assert all(float(micros) > 0 for _, micros in stages)
