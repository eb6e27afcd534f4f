"""Sign-in throttling that cannot be turned against staff (C30): failures count per username
and address and per address, so guessing from one place never locks out the right password from
another. X-Forwarded-For is believed only behind configured proxies."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from bot.console.auth import LOGIN_FAILURES_ALLOWED, LOGIN_FAILURES_PER_ADDRESS
from storage.models import AuditEvent
from tests.console.conftest import PASSWORD, STAFF, SUPPORT, csrf_from

ATTACKER = "203.0.113.66"
OFFICE = "198.51.100.7"


def attempt(
    client: FlaskClient,
    *,
    username: str = STAFF,
    password: str = PASSWORD,
    address: str = OFFICE,
    forwarded_for: str | None = None,
):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(client)},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def guess(app: Flask, times: int, **where: str) -> None:
    for n in range(times):
        response = attempt(app.test_client(), password=f"guess {n}", **where)
        assert response.status_code == 401, n


def test_c30_the_throttle_cannot_lock_out_a_correct_password_from_a_clean_address(
    app: Flask,
) -> None:
    guess(app, LOGIN_FAILURES_ALLOWED, username=STAFF, address=ATTACKER)
    assert attempt(app.test_client(), address=ATTACKER).status_code == 429  # the guesser waits

    assert attempt(app.test_client(), address=OFFICE).status_code == 302  # staff get in


def test_c30_a_username_spray_from_one_address_stops_that_address_only(app: Flask) -> None:
    for n in range(LOGIN_FAILURES_PER_ADDRESS):
        response = attempt(
            app.test_client(), username=f"user{n}", password="guess", address=ATTACKER
        )
        assert response.status_code == 401, n

    refused = attempt(app.test_client(), address=ATTACKER)  # even the right password
    assert refused.status_code == 429
    assert "Too many failed sign-ins from this address" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert attempt(app.test_client(), address=OFFICE).status_code == 302
    assert attempt(app.test_client(), username=SUPPORT, address=OFFICE).status_code == 302


def test_a_success_from_an_address_clears_that_usernames_failures_there(app: Flask) -> None:
    guess(app, LOGIN_FAILURES_ALLOWED - 1, address=OFFICE)
    assert attempt(app.test_client(), address=OFFICE).status_code == 302
    guess(app, LOGIN_FAILURES_ALLOWED - 1, address=OFFICE)
    assert attempt(app.test_client(), address=OFFICE).status_code == 302


def test_x_forwarded_for_is_ignored_without_trusted_proxy_hops(app: Flask) -> None:
    """A guesser cannot dodge the count by inventing a new address for every attempt."""
    for n in range(LOGIN_FAILURES_ALLOWED):
        response = attempt(
            app.test_client(),
            password="guess",
            address=ATTACKER,
            forwarded_for=f"192.0.2.{n}",
        )
        assert response.status_code == 401
    assert attempt(app.test_client(), address=ATTACKER, forwarded_for=OFFICE).status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(make_console) -> None:
    app = make_console(TRUSTED_PROXY_HOPS="1")
    proxy = "10.0.0.2"  # every request arrives from the proxy
    guess(app, LOGIN_FAILURES_ALLOWED, address=proxy, forwarded_for=ATTACKER)
    assert attempt(app.test_client(), address=proxy, forwarded_for=ATTACKER).status_code == 429
    assert attempt(app.test_client(), address=proxy, forwarded_for=OFFICE).status_code == 302
    engine = app.extensions["optin"].engine
    with Session(engine) as session:
        addresses = set(session.exec(select(AuditEvent.address)).all())
    assert addresses == {ATTACKER, OFFICE}


def test_failed_and_refused_sign_ins_are_audited_without_guessed_names(app: Flask, engine):
    attempt(app.test_client(), username="hunter2-typed-as-a-name", password="x", address=ATTACKER)
    guess(app, LOGIN_FAILURES_ALLOWED, address=ATTACKER)
    for _ in range(3):  # refused three times: recorded once
        assert attempt(app.test_client(), address=ATTACKER).status_code == 429
    attempt(app.test_client(), address=OFFICE)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor, e.address) for e in events] == [
        ("sign_in_failed", "(unknown username)", ATTACKER),
        *[("sign_in_failed", STAFF, ATTACKER)] * LOGIN_FAILURES_ALLOWED,
        ("sign_in_refused", STAFF, ATTACKER),
        ("sign_in", STAFF, OFFICE),
    ]
    assert all("hunter2" not in str(e.detail) for e in events)
