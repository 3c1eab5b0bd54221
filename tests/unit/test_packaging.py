"""The project's packages are imported from this checkout, never from an installed namesake."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["schemas", "consumers", "warehouse", "quality", "partners",
                                     "infra"])
def test_package_resolves_to_this_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / package


def test_dag_folder_holds_no_importable_package() -> None:
    assert not (REPO / "dags" / "__init__.py").exists()
    spec = importlib.util.find_spec("dags")
    assert spec is None or not Path(str(spec.origin or "")).is_relative_to(REPO / "dags")
