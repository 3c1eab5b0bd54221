"""Schemathesis against the portal's OpenAPI document, signed in as each kind of reader."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.integration.portal.conftest import PASSWORD, LiveServer, Logins

pytestmark = pytest.mark.integration


def _operations(server: LiveServer) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{server.url}/api/openapi.json")
    operations = [result.ok()  # type: ignore[union-attr]
                  for result in schema.get_all_operations()]
    assert len(operations) >= 15
    return operations


Reader = tuple[requests.Session, dict[str, str]]


def _reader(server: LiveServer, logins: Logins, who: str) -> Reader:
    """A signed-in session, and the path parameters of the reader's own slice."""
    session = requests.Session()
    page = session.get(f"{server.url}/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed = session.post(f"{server.url}/login", allow_redirects=False,
                          data={"username": Logins.users[who], "password": PASSWORD,
                                "csrf_token": token})
    assert signed.status_code == 303
    return session, {"partner_id": logins.partner, "district": logins.district}


@pytest.fixture(scope="package")
def partner_reader(portal_server: LiveServer, logins: Logins) -> Reader:
    return _reader(portal_server, logins, "partner")


@pytest.fixture(scope="package")
def agency_reader(portal_server: LiveServer, logins: Logins) -> Reader:
    return _reader(portal_server, logins, "agency")


@pytest.fixture(scope="package")
def operator_reader(portal_server: LiveServer, logins: Logins) -> Reader:
    return _reader(portal_server, logins, "operator")


# A day range longer than a year is valid per the schema (OpenAPI cannot say "at most 366
# days between two parameters") and is answered 400 with its reason, as the schema documents.
EXCLUDED = [positive_data_acceptance]


def _exercise(case: Any, reader: Reader) -> None:
    session, own = reader
    # As generated (mostly someone else's partner or district), then for the reader's own.
    case.call_and_validate(session=session, excluded_checks=EXCLUDED)
    if case.path_parameters:
        case.path_parameters = {k: own.get(k, v) for k, v in case.path_parameters.items()}
        case.call_and_validate(session=session, excluded_checks=EXCLUDED)


EXAMPLES = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


def _fuzz(server: LiveServer, reader: Reader) -> None:
    """Every operation with generated parameters; Hypothesis shrinks and reports a failure."""
    for operation in _operations(server):
        @given(case=operation.as_strategy())
        @EXAMPLES
        def check(case: Any) -> None:
            _exercise(case, reader)

        check()


def test_a_partner_gets_schema_conformant_answers_and_no_server_error(
        portal_server: LiveServer, partner_reader: Reader) -> None:
    _fuzz(portal_server, partner_reader)


def test_an_agency_gets_schema_conformant_answers_and_no_server_error(
        portal_server: LiveServer, agency_reader: Reader) -> None:
    _fuzz(portal_server, agency_reader)


def test_an_operator_gets_schema_conformant_answers_and_no_server_error(
        portal_server: LiveServer, operator_reader: Reader) -> None:
    _fuzz(portal_server, operator_reader)


def test_a_nul_in_a_text_filter_is_refused_as_invalid_not_a_server_error(
        portal_server: LiveServer, partner_reader: Reader) -> None:
    session, own = partner_reader
    for name in ("event_id", "path", "reason"):
        response = session.get(f"{portal_server.url}/api/partners/{own['partner_id']}/refusals",
                               params={name: "a\x00b"})
        assert response.status_code == 422, name
