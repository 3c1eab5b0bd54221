"""Fault scenarios at two sizes: short in `make test`, long (10,000+ events) in `make faults`."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from infra.kafka import service as local_kafka
from infra.local import REPO_ROOT, LocalServices
from tests.fault.harness import LONG, SHORT
from tests.support.consumers import free_port

SCALES = [pytest.param(SHORT, marks=pytest.mark.fault_short, id="short"),
          pytest.param(LONG, marks=pytest.mark.fault, id="long")]


@pytest.fixture(params=SCALES)
def scale(request: pytest.FixtureRequest):
    return request.param


@pytest.fixture
def own_kafka() -> Iterator[LocalServices]:
    """A broker of the test's own, which it may kill and restart."""
    state = REPO_ROOT / ".local" / "test" / "own" / uuid.uuid4().hex[:10]
    cfg = LocalServices(state_dir=state, kafka_port=free_port(), kafka_controller_port=free_port(),
                        kafka_heap_mb=384)
    local_kafka.start(cfg)
    try:
        yield cfg
    finally:
        local_kafka.stop(cfg)
        shutil.rmtree(state, ignore_errors=True)
