"""What the DAGs' task bodies share; Airflow is imported only once a task runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def fail_without_retry(*errors: type[Exception]) -> Iterator[None]:
    """Fail the task for good on these errors (bad params, configuration or data): a retry
    would meet them again, so it would only delay the alert."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except errors as exc:
        raise AirflowFailException(str(exc)) from exc
