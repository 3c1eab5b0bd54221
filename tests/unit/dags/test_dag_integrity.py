"""Every DAG file imports cleanly, fast, and without opening a connection while parsing."""

from __future__ import annotations

import ast
import socket
import sys
import time
from pathlib import Path

import pytest

DAG_FOLDER = Path(__file__).resolve().parents[3] / "dags"
DAG_FILES = sorted(DAG_FOLDER.glob("*.py"))


class _NoConnections(socket.socket):
    def connect(self, *args, **kwargs):
        raise AssertionError(f"a DAG file opened a connection while parsing: {args}")

    def connect_ex(self, *args, **kwargs):
        raise AssertionError(f"a DAG file opened a connection while parsing: {args}")


@pytest.fixture(scope="module")
def dagbag_of():
    from airflow.dag_processing.dagbag import DagBag

    def parse(path: Path) -> DagBag:
        return DagBag(dag_folder=str(path))

    parse(DAG_FILES[0])  # warm Airflow's own imports so timings measure the DAG file alone
    return parse


def test_there_are_dag_files() -> None:
    assert [p.name for p in DAG_FILES] == sorted(p.name for p in DAG_FOLDER.glob("*.py"))
    assert "nightly_sync.py" in {p.name for p in DAG_FILES}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_without_errors_quickly_and_offline(path, dagbag_of, monkeypatch):
    monkeypatch.setattr(socket, "socket", _NoConnections)
    heavy_before = {m for m in sys.modules if m.split(".")[0] in {"great_expectations", "psycopg"}}
    started = time.perf_counter()
    bag = dagbag_of(path)
    elapsed = time.perf_counter() - started
    assert bag.import_errors == {}
    assert bag.dags, f"{path.name} defines no DAG"
    assert elapsed < 1.0, f"{path.name} took {elapsed:.2f}s to parse"
    heavy_after = {m for m in sys.modules if m.split(".")[0] in {"great_expectations", "psycopg"}}
    assert heavy_after == heavy_before, "parsing imported heavy libraries"


def test_nightly_sync_is_wired_as_documented(dagbag_of) -> None:
    dag = dagbag_of(DAG_FOLDER / "nightly_sync.py").dags["nightly_sync"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "wait_for_ingest", "validate", "load", "wait_for_feed", "summarise", "report"]
    assert dag.max_active_runs == 1
    assert "business_day" in dag.params
    assert all(t.retries >= 1 for t in dag.tasks)


def test_erase_person_takes_pseudonyms_and_no_identity_number(dagbag_of) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag_of(DAG_FOLDER / "erase_person.py").dags["erase_person"]
    pseudonyms = dag.params.get_param("pseudonyms")

    assert set(dag.params) == {"id_type", "pseudonyms", "requested_by", "reason"}
    assert pseudonyms.resolve([{"key_id": "k1", "person": "ab" * 32}]) == [
        {"key_id": "k1", "person": "ab" * 32}]
    for refused in ([], [{"key_id": "k1", "person": "330106198808081234"}],
                    [{"key_id": "k1", "person": "ab" * 32, "id_number": "330106198808081234"}]):
        with pytest.raises(ParamValidationError):
            pseudonyms.resolve(refused)


# What DAG files may import: Airflow, the standard library, and the layers that do the work;
# never the ingestion service (a separate deployable: the DAG runs its commands instead).
DAG_IMPORTS = {"airflow", "pendulum", "adapters", "quality", "schemas", "warehouse",
               "__future__", *sys.stdlib_module_names}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_only_airflow_and_the_layers_below(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= DAG_IMPORTS, f"{path.name} imports {sorted(imported - DAG_IMPORTS)}"


@pytest.mark.parametrize(("setting", "paused"), [("", True), ("false", True), ("true", False)])
def test_nightly_sync_is_created_paused_unless_the_deployment_should_run_nights(
        dagbag_of, monkeypatch, setting: str, paused: bool) -> None:
    monkeypatch.setenv("SKILLSYNC_NIGHTLY_SYNC_ACTIVE", setting)
    dag = dagbag_of(DAG_FOLDER / "nightly_sync.py").dags["nightly_sync"]
    assert dag.is_paused_upon_creation is paused
