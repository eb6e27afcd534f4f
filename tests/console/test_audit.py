"""The audit log (C30): every sign-in, view, export, erasure and resolution, by whom and from
where; contacts only masked or hashed, so an erased number never shows; append-only."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, select

from bot.wiring.logmask import fingerprint
from storage.db import session_scope
from storage.inbox import keep_failed_payload
from storage.models import AuditEvent, FailedPayload
from tests.conftest import API_TOKEN
from tests.console.conftest import CUSTOMER, STAFF, SUPPORT, converse, csrf_from, sign_in

MASKED = "••••••••4567"
# The number however it might be written: digits, E.164, or grouped as people type it.
SPELLINGS = (CUSTOMER, "+" + CUSTOMER, "971 50 123 4567", "50 123 4567", "501234567")


def events(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.id)).all())


def everything_in(event: AuditEvent) -> str:
    return json.dumps(event.model_dump(mode="json"), ensure_ascii=False)


def assert_no_number(text_: str) -> None:
    digits = re.sub(r"[^0-9]", "", text_)
    for spelling in SPELLINGS:
        assert spelling not in text_
    assert "501234567" not in digits  # not even split across markup


def test_c30_the_audit_log_never_shows_an_erased_number(
    app: Flask, staff_client: FlaskClient, api, engine
) -> None:
    converse(app)
    staff_client.get(f"/console/contacts/{CUSTOMER}")
    staff_client.get(f"/console/contacts/{CUSTOMER}/export.json")
    assert api.get("/contacts/+971%2050%20123%204567").status_code == 200
    token = csrf_from(staff_client, "/console/")
    erased = staff_client.post(
        f"/console/contacts/{CUSTOMER}/erase", data={"confirm": CUSTOMER, "csrf_token": token}
    )
    assert erased.status_code == 200
    assert api.get(f"/contacts/{CUSTOMER}").status_code == 404  # after: a lookup, recorded too

    page = staff_client.get("/console/audit").get_data(as_text=True)

    assert_no_number(page)
    assert page.count(MASKED) >= 5
    assert "contact_erased" in page and "contact_exported" in page
    for event in events(engine):
        assert_no_number(everything_in(event))
    actions = [(e.channel, e.action, e.subject) for e in events(engine) if e.subject]
    assert ("console", "contact_viewed", MASKED) in actions
    assert ("console", "contact_exported", MASKED) in actions
    assert ("api", "contact_viewed", MASKED) in actions
    assert ("console", "contact_erased", MASKED) in actions

    # Searching by the number finds its events by their keyed hash, and does not echo it.
    found = staff_client.get(f"/console/audit?contact=%2B{CUSTOMER}").get_data(as_text=True)
    assert_no_number(found)
    assert 'about <span class="mono">' + MASKED in found
    assert found.count('class="audit-row"') == len(actions) + 1  # with this very look-up


def test_c30_every_console_act_is_recorded_with_who_and_from_where(
    app: Flask, client: FlaskClient, engine
) -> None:
    converse(app)
    with session_scope(engine) as session:
        keep_failed_payload(session, body=b"{not json", problem="not JSON")
    with Session(engine) as session:
        item = session.exec(select(FailedPayload)).one()
    assert sign_in(client, password="wrong password!").status_code == 401
    assert sign_in(client).status_code == 302
    client.get("/console/")
    client.get(f"/console/contacts/{CUSTOMER}")
    client.get(f"/console/contacts/{CUSTOMER}/export.json")
    token = csrf_from(client, "/console/inbox")
    client.post(f"/console/inbox/{item.id}/resolve", data={"csrf_token": token})
    client.post("/console/logout", data={"csrf_token": csrf_from(client, "/console/")})

    recorded = [(e.channel, e.actor, e.action, e.subject, e.address) for e in events(engine)]
    assert recorded == [
        ("console", STAFF, "sign_in_failed", None, "127.0.0.1"),
        ("console", STAFF, "sign_in", None, "127.0.0.1"),
        ("console", STAFF, "contact_viewed", MASKED, "127.0.0.1"),
        ("console", STAFF, "contact_exported", MASKED, "127.0.0.1"),
        ("console", STAFF, "inbox_resolved", None, "127.0.0.1"),
        ("console", STAFF, "sign_out", None, "127.0.0.1"),
    ]
    assert events(engine)[4].detail == {"item": item.id}


def test_c30_the_apis_calls_are_recorded_by_token_fingerprint(app: Flask, api, engine) -> None:
    converse(app)
    api.get(f"/contacts/{CUSTOMER}/messages")
    api.get("/contacts/15550000000")
    with api.client.get(
        "/api/v1/audience?category=orders", headers=api.headers
    ) as streamed:  # recorded once the stream is sent and closed
        assert streamed.status_code == 200
        streamed.get_data()
    api.client.get(f"/api/v1/contacts/{CUSTOMER}", headers={"Authorization": "Bearer nope"})

    recorded = [(e.channel, e.actor, e.action, e.subject, e.detail) for e in events(engine)]
    who = fingerprint(API_TOKEN)
    assert recorded == [
        (
            "api",
            who,
            "contact_viewed",
            MASKED,
            {"method": "GET", "route": "/api/v1/contacts/<wa_id>/messages", "status": 200},
        ),
        (
            "api",
            who,
            "api_call",
            "•••••••0000",
            {"method": "GET", "route": "/api/v1/contacts/<wa_id>", "status": 404},
        ),
        (
            "api",
            who,
            "api_call",
            None,
            {"method": "GET", "route": "/api/v1/audience", "status": 200},
        ),
    ]  # the call with an unknown token has nobody to account for: it is only logged


def test_the_audit_log_cannot_be_changed_or_deleted(app: Flask, client, engine) -> None:
    sign_in(client)
    for statement in ("UPDATE audit_event SET actor = 'nobody'", "DELETE FROM audit_event"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert [e.actor for e in events(engine)] == [STAFF]


def test_the_audit_page_filters_by_action_and_actor(app: Flask, staff_client, engine) -> None:
    other = app.test_client()
    sign_in(other, username=SUPPORT)
    page = staff_client.get("/console/audit?action=sign_in").get_data(as_text=True)
    assert page.count('class="audit-row"') == 2
    mine = staff_client.get(f"/console/audit?action=sign_in&actor={SUPPORT}")
    assert mine.get_data(as_text=True).count('class="audit-row"') == 1
    # Reading the log is itself recorded.
    assert [e.action for e in events(engine)][-3:] == ["sign_in", "audit_viewed", "audit_viewed"]
