"""What Airflow tasks share, and starting a DAG run; Airflow is imported only when used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from schemas.errors import ConfigurationError, RunFailed, ServiceUnavailable


@contextmanager
def fail_without_retry(*errors: type[Exception]) -> Iterator[None]:
    """Fail the task for good on a bad setting or parameter, or on data that fails a check
    (and on `errors`): a retry would meet them again, so it would only delay the alert. An
    unavailable service, or anything unforeseen, is left to the task's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    final: tuple[type[Exception], ...] = (ConfigurationError, RunFailed, *errors)
    try:
        yield
    except final as exc:
        raise AirflowFailException(str(exc)) from exc


def trigger_dag(dag_id: str, conf: Mapping[str, Any]) -> None:
    """Queue a run of a DAG with this environment's Airflow (its AIRFLOW_* settings)."""
    _command(["dags", "trigger", dag_id, "--conf", json.dumps(conf)])


def run_module(module: str, args: Sequence[str]) -> str:
    """Run `python -m module args` (a job of another part of the pipeline, which a DAG may not
    import) and return what it printed. Its exit status says what to do: 2, a configuration
    or parameter error (ConfigurationError); any other failure, ServiceUnavailable."""
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, check=False, env=os.environ.copy())
    if done.returncode == 2:
        raise ConfigurationError(done.stderr.strip() or f"{module}: bad configuration")
    if done.returncode != 0:
        raise ServiceUnavailable(f"python -m {module} exited {done.returncode}: "
                                 f"{done.stderr.strip()[-2000:]}")
    return done.stdout


def _command(args: Sequence[str]) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceUnavailable(f"`airflow {' '.join(args[:2])}` exited {done.returncode}: "
                                 f"{done.stderr.strip()[-2000:]}")
