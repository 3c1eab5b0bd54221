"""How many random weeks to run, or which one week to replay."""

from __future__ import annotations

from datetime import date

import pytest

from tests.support.seed import derived_seed


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "week_seed" not in metafunc.fixturenames:
        return
    config = metafunc.config
    chosen = config.getoption("--week-seed")
    if chosen is not None:
        seeds = [chosen]
    else:
        seeds = [derived_seed("differential week", i) for i in range(config.getoption("--weeks"))]
    metafunc.parametrize("week_seed", seeds, ids=[f"week{i:04d}" for i in range(len(seeds))])


@pytest.fixture
def week_start(request: pytest.FixtureRequest) -> date | None:
    return request.config.getoption("--start")
