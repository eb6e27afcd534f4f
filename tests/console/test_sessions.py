"""Console sessions live on the server (C30): sign-out, an admin, the idle timeout and the
absolute lifetime end them at once, and the cookie alone opens nothing."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.console.sessions import USER_KEY
from storage.models import AuditEvent, ConsoleSession
from storage.types import utcnow
from tests.console.conftest import STAFF, SUPPORT, csrf_from, sign_in

COOKIE = "optin_console"


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE, path="/console")
    assert cookie is not None
    return cookie.value


def client_with_cookie(app: Flask, value: str) -> FlaskClient:
    client = app.test_client()
    client.set_cookie(COOKIE, value, path="/console")
    return client


def live_rows(engine: Engine) -> list[ConsoleSession]:
    with Session(engine) as session:
        return list(session.exec(select(ConsoleSession)).all())


def sign_out(client: FlaskClient):
    return client.post("/console/logout", data={"csrf_token": csrf_from(client, "/console/")})


def test_c30_sign_out_kills_a_cookie_copied_before_it(app: Flask, staff_client, engine) -> None:
    copied = cookie_of(staff_client)
    assert client_with_cookie(app, copied).get("/console/").status_code == 200  # a copy works...

    assert sign_out(staff_client).status_code == 302

    replayed = client_with_cookie(app, copied).get("/console/")
    assert replayed.status_code == 302  # ...until sign-out, everywhere
    assert replayed.headers["Location"].startswith("/console/login")
    assert live_rows(engine) == []


def test_c30_a_cookie_forged_with_the_secret_key_opens_nothing(app: Flask) -> None:
    """What a weak SECRET_KEY allowed: a signed cookie naming a user is no longer a session."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    forged = serializer.dumps({USER_KEY: STAFF, "seen": int(time.time()), "csrf": "x"})
    assert client_with_cookie(app, forged).get("/console/").status_code == 302
    guessed = serializer.dumps({"sid": "a-token-nobody-was-given"})
    assert client_with_cookie(app, guessed).get("/console/").status_code == 302


def test_the_database_keeps_only_a_hash_of_the_cookies_token(app: Flask, staff_client, engine):
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    content = serializer.loads(cookie_of(staff_client))
    assert set(content) == {"sid", "_permanent"}  # no user, no role in the cookie
    [row] = live_rows(engine)
    assert row.id == hashlib.sha256(content["sid"].encode()).hexdigest()
    assert row.username == STAFF
    assert content["sid"] not in {row.id, row.csrf_token}


def test_a_session_ends_after_its_absolute_lifetime_however_active(
    app: Flask, staff_client, engine
) -> None:
    assert staff_client.get("/console/").status_code == 200
    with Session(engine) as session:
        row = session.exec(select(ConsoleSession)).one()
        row.created_at = utcnow() - timedelta(hours=12, minutes=1)
        row.last_seen_at = utcnow()
        session.add(row)
        session.commit()
    assert staff_client.get("/console/").status_code == 302
    assert live_rows(engine) == []


def test_using_the_console_keeps_a_session_from_going_idle(staff_client, engine) -> None:
    nearly_idle = utcnow() - timedelta(hours=8) + timedelta(minutes=1)
    with Session(engine) as session:
        row = session.exec(select(ConsoleSession)).one()
        row.last_seen_at = nearly_idle
        session.add(row)
        session.commit()
    assert staff_client.get("/console/").status_code == 200
    [row] = live_rows(engine)
    assert row.last_seen_at > utcnow() - timedelta(minutes=1)  # renewed on the server


def test_the_idle_timeout_and_lifetime_come_from_the_settings(app_config, make_console) -> None:
    app = make_console(CONSOLE_IDLE_MINUTES="1", CONSOLE_SESSION_HOURS="1")
    client = app.test_client()
    assert sign_in(client).status_code == 302
    engine = app.extensions["optin"].engine
    with Session(engine) as session:
        row = session.exec(select(ConsoleSession)).one()
        row.last_seen_at = utcnow() - timedelta(seconds=61)
        session.add(row)
        session.commit()
    assert client.get("/console/").status_code == 302


def test_a_sign_in_starts_a_new_session_and_ends_none_of_the_others(app: Flask, engine) -> None:
    first, second = app.test_client(), app.test_client()
    assert sign_in(first).status_code == 302
    assert sign_in(second).status_code == 302
    assert cookie_of(first) != cookie_of(second)
    assert len(live_rows(engine)) == 2
    assert first.get("/console/").status_code == 200
    assert second.get("/console/").status_code == 200


def test_an_admin_signs_a_staff_member_out_everywhere(app: Flask, staff_client, engine) -> None:
    laptop, phone = app.test_client(), app.test_client()
    for client in (laptop, phone):
        assert sign_in(client, username=SUPPORT).status_code == 302

    page = staff_client.get("/console/sessions").get_data(as_text=True)
    assert page.count('class="session-row"') == 3
    assert "this session" in page
    response = staff_client.post(
        "/console/sessions/end",
        data={"username": SUPPORT, "csrf_token": csrf_from(staff_client, "/console/sessions")},
    )

    assert response.status_code == 302
    assert laptop.get("/console/").status_code == 302
    assert phone.get("/console/").status_code == 302
    assert staff_client.get("/console/").status_code == 200  # the admin's own goes on
    with Session(engine) as session:
        ended = session.exec(select(AuditEvent).where(AuditEvent.action == "sessions_ended")).one()
    assert (ended.actor, ended.detail) == (STAFF, {"of": SUPPORT, "ended": 2})


def test_signing_everyone_out_includes_the_admin(app: Flask, staff_client, engine) -> None:
    other = app.test_client()
    assert sign_in(other, username=SUPPORT).status_code == 302
    response = staff_client.post(
        "/console/sessions/end",
        data={"username": "*", "csrf_token": csrf_from(staff_client, "/console/sessions")},
    )
    assert response.headers["Location"] == "/console/login"
    assert staff_client.get("/console/").status_code == 302
    assert other.get("/console/").status_code == 302
    assert live_rows(engine) == []


def test_ending_sessions_needs_the_csrf_token_and_a_known_name(staff_client) -> None:
    assert staff_client.post("/console/sessions/end", data={"username": "*"}).status_code == 400
    token = csrf_from(staff_client, "/console/sessions")
    unknown = staff_client.post(
        "/console/sessions/end", data={"username": "zed", "csrf_token": token}
    )
    assert unknown.status_code == 400
    assert staff_client.get("/console/").status_code == 200
