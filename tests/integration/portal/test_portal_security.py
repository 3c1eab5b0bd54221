"""Sessions, CSRF, sign-in throttling, disabled accounts and TLS cookies, on the live portal."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from adapters.settings import Settings
from portal.__main__ import main as portal_command
from tests.integration.portal.conftest import (
    PASSWORD,
    LiveServer,
    Logins,
    PortalWeek,
    portal_settings,
    serving,
)

pytestmark = pytest.mark.integration


def _client(live: LiveServer, **options: object) -> httpx.Client:
    return httpx.Client(base_url=live.url, follow_redirects=False, timeout=30,
                        **options)  # type: ignore[arg-type]


def _token(client: httpx.Client, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def _signed_in(live: LiveServer, username: str, password: str = PASSWORD) -> httpx.Client:
    client = _client(live)
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": _token(client)})
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def forget_failures(portal_week: PortalWeek) -> Iterator[None]:
    """Sign-in failures are shared by every test's client (127.0.0.1): clear them after."""
    yield
    with psycopg.connect(portal_week.database_url) as conn:
        conn.execute("DELETE FROM portal.login_failure")


def test_forms_without_the_sessions_csrf_token_are_refused(portal_server: LiveServer,
                                                           forget_failures: None) -> None:
    anonymous = _client(portal_server)
    _token(anonymous)
    refused = anonymous.post("/login", data={"username": Logins.users["operator"],
                                             "password": PASSWORD})
    assert refused.status_code == 403
    assert "skillsync_session" not in refused.headers.get("set-cookie", "") or \
        anonymous.get("/api/me").status_code == 401

    client = _signed_in(portal_server, Logins.users["partner"])
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/api/me").status_code == 200  # still signed in
    assert client.post("/language", data={"lang": "en"}).status_code == 403
    assert 'lang="zh-CN"' in client.get("/login").text
    # A token from another session does not do either.
    other = _signed_in(portal_server, Logins.users["other_partner"])
    stolen = _token(other)
    assert client.post("/logout", data={"csrf_token": stolen}).status_code == 403
    assert client.get("/api/me").status_code == 200
    assert client.post("/logout", data={"csrf_token": _token(client)}).status_code == 303
    assert client.get("/api/me").status_code == 401


def _cookie_parts(client: httpx.Client) -> tuple[dict[str, object], str]:
    value = client.cookies["skillsync_session"]
    payload, _, signature = value.partition(".")
    return json.loads(base64.b64decode(payload)), signature


def test_a_tampered_session_is_refused(portal_server: LiveServer, logins: Logins) -> None:
    client = _signed_in(portal_server, Logins.users["partner"])
    session, signature = _cookie_parts(client)
    assert session["user"] == Logins.users["partner"]
    # The same signature on a session claiming to be the operator.
    forged = dict(session, user=Logins.users["operator"])
    encoded = base64.b64encode(json.dumps(forged).encode()).decode()
    tampered = _client(portal_server, cookies={"skillsync_session": f"{encoded}.{signature}"})
    assert tampered.get("/api/operator/overview").status_code == 401
    assert tampered.get("/operator").status_code == 303
    assert tampered.get(f"/partner/{logins.partner}").status_code == 303
    # A cookie signed with another key is no session either.
    with serving(portal_settings_like(portal_server)) as other:
        elsewhere = _signed_in(other, Logins.users["operator"])
        cookie = elsewhere.cookies["skillsync_session"]
    foreign = _client(portal_server, cookies={"skillsync_session": cookie})
    assert foreign.get("/api/me").status_code == 401


def portal_settings_like(live: LiveServer) -> Settings:
    """The same portal configuration under another session key."""
    from pydantic import SecretStr

    other = live.settings.model_copy(update={"session_secret": SecretStr("another key " * 4)})
    sections = live.sections
    return Settings(portal=other, database=sections.database, kafka=sections.kafka,
                    ingest=sections.ingest)


def test_cookies_are_httponly_samesite_and_secure_only_over_tls(
        portal_week: PortalWeek, logins: Logins, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    cert, private = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    settings = portal_settings(portal_week, tls_certfile=cert, tls_keyfile=private)
    # Each client is closed before its server stops: a TLS connection left open holds the
    # server's shutdown until the fixture's 30 s join gives up on it.
    with (serving(settings, ssl_certfile=str(cert), ssl_keyfile=str(private)) as live,
          _client(live, verify=False) as client):
        flags = client.get("/login").headers["set-cookie"].lower()
    assert live.url.startswith("https://")
    assert {"httponly", "samesite=strict", "secure"} <= {f.strip() for f in flags.split(";")}
    with serving(portal_settings(portal_week)) as plain, _client(plain) as client:
        flags = client.get("/login").headers["set-cookie"].lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" not in flags


def test_sign_in_is_throttled_after_repeated_failures(
        portal_server: LiveServer, forget_failures: None) -> None:
    allowed = portal_server.settings.login_failures_allowed
    client = _client(portal_server)
    token = _token(client)
    for _ in range(allowed):
        wrong = client.post("/login", data={"username": Logins.users["agency"],
                                            "password": "not the password", "csrf_token": token})
        assert wrong.status_code == 401
    # Now even the right password waits, and says when to try again.
    throttled = client.post("/login", data={"username": Logins.users["agency"],
                                            "password": PASSWORD, "csrf_token": token})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) == portal_server.settings.login_window_s
    assert client.get("/api/me").status_code == 401


def test_accounts_are_created_and_disabled_by_command_and_disabling_ends_sessions(
        portal_server: LiveServer, portal_week: PortalWeek, logins: Logins,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SKILLSYNC_DATABASE_URL", portal_week.database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert portal_command(["accounts", "create", "late-partner", "--kind", "partner",
                           "--partner", logins.partner, "--password-stdin"]) == 0
    client = _signed_in(portal_server, "late-partner", "a long enough password")
    assert client.get(f"/partner/{logins.partner}").status_code == 200
    assert portal_command(["accounts", "disable", "late-partner"]) == 0
    assert client.get(f"/partner/{logins.partner}").status_code == 303
    assert client.get("/api/me").status_code == 401
    token = _token(client)
    again = client.post("/login", data={"username": "late-partner",
                                        "password": "a long enough password", "csrf_token": token})
    assert again.status_code == 401
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert portal_command(["accounts", "create", "weak", "--kind", "operator",
                           "--password-stdin"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err
    with psycopg.connect(portal_week.database_url) as conn:
        conn.execute("DELETE FROM portal.login_failure")
        stored = conn.execute("SELECT password_hash FROM portal.account"
                              " WHERE username = 'late-partner'").fetchone()
    assert stored and stored[0].startswith("$argon2id$")


def test_pages_carry_a_content_security_policy_and_no_caching(portal_server: LiveServer) -> None:
    client = _signed_in(portal_server, Logins.users["operator"])
    headers = client.get("/operator").headers
    assert "script-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
