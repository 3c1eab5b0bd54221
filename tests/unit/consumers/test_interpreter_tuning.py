"""The consumer process's interpreter settings: quick GIL hand-over, start-up objects frozen."""

from __future__ import annotations

import subprocess
import sys

import pytest

from consumers.service import GIL_SWITCH_INTERVAL_S


def test_tuning_shortens_the_gil_switch_interval_and_freezes_what_start_up_loaded() -> None:
    # In a child: the settings are process-wide and would otherwise outlive this test.
    probe = (
        "import gc, sys\n"
        "from consumers.service import tune_interpreter\n"
        "before = (sys.getswitchinterval(), gc.get_freeze_count())\n"
        "tune_interpreter()\n"
        "print(*before, sys.getswitchinterval(), gc.get_freeze_count())\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    interval_before, frozen_before, interval, frozen = result.stdout.split()

    assert float(interval_before) == 0.005
    assert int(frozen_before) == 0
    assert float(interval) == pytest.approx(GIL_SWITCH_INTERVAL_S)  # kept in microseconds
    assert int(frozen) > 10_000  # every module and the reference data loaded so far
