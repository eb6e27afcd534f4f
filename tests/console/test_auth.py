"""Signing in and out of the support console, and what it refuses."""

from __future__ import annotations

import logging
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash

from bot import create_app
from bot.console.auth import LOGIN_FAILURE_WINDOW_SECONDS, LOGIN_FAILURES_ALLOWED, SEEN_KEY
from bot.wiring.services import services
from tests.clock import StoreTime
from tests.console.conftest import PASSWORD, STAFF, csrf_from, sign_in
from tests.services import redis_url_or_skip


def test_console_is_disabled_without_console_users(app_config: dict[str, str]) -> None:
    config = {k: v for k, v in app_config.items() if k != "CONSOLE_USERS"}
    app = create_app(config)
    try:
        client = app.test_client()
        for path in ("/console/", "/console/login", "/console/contacts/15550001234"):
            response = client.get(path)
            assert response.status_code == 403, path
            page = response.get_data(as_text=True)
            assert "disabled" in page
            assert "CONSOLE_USERS" in page
        assert client.post("/console/login", data={"username": "x"}).status_code == 403
    finally:
        services(app).engine.dispose()


def test_pages_redirect_to_the_login_form_when_signed_out(client: FlaskClient) -> None:
    response = client.get("/console/contacts/15550001234")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=")
    assert response.headers["Location"] == "/console/login?next=/console/contacts/15550001234"
    export = client.get("/console/contacts/15550001234/export.json")
    assert export.status_code == 302


def test_sign_in_sets_a_hardened_session_cookie_and_returns_to_the_page_asked_for(
    client: FlaskClient,
) -> None:
    token = csrf_from(client, "/console/login?next=/console/contacts/15550001234")
    response = client.post(
        "/console/login",
        data={
            "username": STAFF,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/console/contacts/15550001234",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/contacts/15550001234"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/console" in cookie
    assert "Secure" in cookie  # APP_ENV=production: secure by default
    page = client.get("/console/")
    assert page.status_code == 200
    assert f"Signed in as <strong>{STAFF}</strong>" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/console/",
        "/api/v1",
        "/console/\r\nSet-Cookie: x=1",  # a header split, not a path
        "/console/\x00",
    ],
)
def test_sign_in_never_redirects_off_the_console(client: FlaskClient, target: str) -> None:
    response = client.post(
        "/console/login",
        data={
            "username": STAFF,
            "password": PASSWORD,
            "csrf_token": csrf_from(client),
            "next": target,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"


@pytest.mark.parametrize(
    ("username", "password"), [(STAFF, "wrong password!"), ("mallory", PASSWORD), ("", "")]
)
def test_a_failed_sign_in_says_nothing_about_which_part_was_wrong(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, username: str, password: str
) -> None:
    caplog.set_level(logging.INFO, logger="bot.console")
    response = sign_in(client, username=username, password=password)
    assert response.status_code == 401
    assert "Unknown username or password." in response.get_data(as_text=True)
    assert client.get("/console/").status_code == 302
    failures = [r.getMessage() for r in caplog.records if "login failed" in r.getMessage()]
    assert failures == [f"console login failed for {username!r}"]
    assert all(password not in r.getMessage() for r in caplog.records if password)


def test_sign_in_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    client.get("/console/login")
    missing = client.post("/console/login", data={"username": STAFF, "password": PASSWORD})
    assert missing.status_code == 400
    forged = client.post(
        "/console/login", data={"username": STAFF, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert forged.status_code == 400
    assert client.get("/console/").status_code == 302


def test_sign_out_needs_the_csrf_token_and_ends_the_session(staff_client: FlaskClient) -> None:
    refused = staff_client.post("/console/logout", data={})
    assert refused.status_code == 400
    assert staff_client.get("/console/").status_code == 200

    token = csrf_from(staff_client, "/console/")
    response = staff_client.post("/console/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login"
    assert staff_client.get("/console/").status_code == 302
    assert staff_client.get("/console/logout").status_code == 405


def test_a_session_idle_for_more_than_eight_hours_must_sign_in_again(
    staff_client: FlaskClient,
) -> None:
    with staff_client.session_transaction("/console/") as session:
        session[SEEN_KEY] = int(time.time()) - 8 * 3600 + 60
    assert staff_client.get("/console/").status_code == 200  # activity renews the session
    with staff_client.session_transaction("/console/") as session:
        session[SEEN_KEY] = int(time.time()) - 8 * 3600 - 1
    assert staff_client.get("/console/").status_code == 302


def test_a_session_ends_when_its_account_is_removed(
    app: Flask, staff_client: FlaskClient, app_config: dict[str, str]
) -> None:
    other = create_app({**app_config, "CONSOLE_USERS": "bob:" + app_config["CONSOLE_USERS"][6:]})
    try:
        client = other.test_client()
        with staff_client.session_transaction("/console/") as session:
            copied = dict(session)
        assert copied["console_user"] == STAFF
        with client.session_transaction("/console/") as session:
            session.update(copied)
        assert client.get("/console/").status_code == 302
    finally:
        services(other).engine.dispose()


def test_pages_are_not_cached_framed_or_leaked_in_referers(staff_client: FlaskClient) -> None:
    headers = staff_client.get("/console/").headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert staff_client.get("/console/static/console.css").status_code == 200


def test_hash_password_prompts_twice_and_prints_a_werkzeug_hash(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["console", "hash-password"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip().splitlines()[-1]
    assert check_password_hash(printed, PASSWORD)
    assert PASSWORD not in result.stdout

    mismatch = runner.invoke(
        args=["console", "hash-password"], input=f"{PASSWORD}\nsomething else\n"
    )
    assert mismatch.exit_code != 0
    short = runner.invoke(args=["console", "hash-password"], input="short\nshort\n")
    assert short.exit_code != 0
    assert "at least 12 characters" in short.output


def test_an_unreadable_hash_refuses_the_sign_in_instead_of_failing(
    app_config: dict[str, str],
) -> None:
    app = create_app({**app_config, "CONSOLE_USERS": "carol:scrypt:many:8:1$salt$abcd"})
    try:
        client = app.test_client()
        response = sign_in(client, username="carol", password=PASSWORD)
        assert response.status_code == 401
    finally:
        services(app).engine.dispose()


# --- password guessing ------------------------------------------------------------------------


def fail(client: FlaskClient, times: int, username: str = STAFF) -> None:
    for _ in range(times):
        assert sign_in(client, username=username, password="not the password").status_code == 401


def test_after_five_failed_sign_ins_the_username_is_refused_even_with_the_right_password(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    fail(client, LOGIN_FAILURES_ALLOWED)

    response = sign_in(client)

    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= LOGIN_FAILURE_WINDOW_SECONDS
    assert "Too many failed sign-ins for this username" in response.get_data(as_text=True)
    assert client.get("/console/").status_code == 302  # not signed in
    assert any("too many failed attempts" in r.getMessage() for r in caplog.records)
    # Another username is not held back by this one's failures.
    assert sign_in(client, username="bob", password="whatever").status_code == 401


def test_a_successful_sign_in_starts_the_count_again(app: Flask) -> None:
    fail(app.test_client(), LOGIN_FAILURES_ALLOWED - 1)
    assert sign_in(app.test_client()).status_code == 302

    fail(app.test_client(), LOGIN_FAILURES_ALLOWED - 1)
    assert sign_in(app.test_client()).status_code == 302


def test_the_refusal_ends_with_the_window_that_began_with_the_first_failure(
    app: Flask, client: FlaskClient
) -> None:
    # The window's time is moved by the test (the store's clock, or Redis's keys' time left).
    store, moved = StoreTime.of(services(app).store)
    services(app).store = store
    window = LOGIN_FAILURE_WINDOW_SECONDS
    fail(client, 1)
    moved.advance(window / 2)
    fail(client, LOGIN_FAILURES_ALLOWED - 1)  # later failures do not move the window
    assert sign_in(client).status_code == 429

    moved.advance(window / 2 - 30)
    refused = sign_in(client)
    assert refused.status_code == 429  # half a minute before the end: still refused
    assert 0 < int(refused.headers["Retry-After"]) <= 30

    moved.advance(30)
    assert sign_in(client).status_code == 302


def test_failed_sign_ins_count_across_workers_sharing_redis(app_config: dict[str, str]) -> None:
    config = {**app_config, "REDIS_URL": redis_url_or_skip()}
    first, second = create_app(config), create_app(config)  # two gunicorn workers
    try:
        fail(first.test_client(), 3)
        fail(second.test_client(), LOGIN_FAILURES_ALLOWED - 3)
        assert sign_in(first.test_client()).status_code == 429
    finally:
        services(first).store.delete(f"console-login-failures:{STAFF}")
        for app in (first, second):
            services(app).engine.dispose()
