"""A contact's page after a real conversation: profile, consent, ledger, transcript, export."""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.dev import simulate
from bot.dev.chat import ChatSession
from bot.wiring.services import services
from storage.contacts import find_contact, hold_marketing
from storage.db import session_scope
from storage.types import utcnow
from tests.conftest import Api, MetaWebhook
from tests.console.conftest import ARABIC_TEXT, CUSTOMER, CUSTOMER_NAME, converse

LEDGER_ROW = re.compile(r'<tr class="ledger-row">(.*?)</tr>', re.S)
MESSAGE = re.compile(r'<li class="msg (in|out)">(.*?)</li>', re.S)
ISO_UTC = re.compile(r'<time datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)">\1</time>')


def contact_page(client: FlaskClient, key: str = CUSTOMER) -> str:
    response = client.get(f"/console/contacts/{key}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_ledger_shows_each_decision_with_its_text_and_evidence(
    staff_client: FlaskClient, conversation: ChatSession
) -> None:
    page = contact_page(staff_client)
    rows = LEDGER_ROW.findall(page)
    assert len(rows) == 4  # yes to both categories, then STOP withdrew both
    decisions = [re.search(r'class="badge \w+">(\w+)<', row).group(1) for row in rows]  # type: ignore[union-attr]
    assert decisions == ["granted", "granted", "withdrawn", "withdrawn"]
    assert [re.search(r'<td class="mono">(\w+)</td>', r).group(1) for r in rows] == [  # type: ignore[union-attr]
        "orders",
        "offers",
        "orders",
        "offers",
    ]
    for row in rows:
        assert len(ISO_UTC.findall(row)) == 2  # occurred and recorded
        assert "<td>whatsapp</td>" in row
        assert "<details><summary>show text</summary>" in row
        assert "reply_wamid" in row
    granted_text = html.unescape(rows[0])
    assert "Nimbus Bakery would like to send you these messages here on WhatsApp" in granted_text
    assert "prompt_wamid" in rows[0]
    assert ">STOP</p>" in rows[2]


def test_current_consent_and_profile(staff_client: FlaskClient, conversation: ChatSession) -> None:
    page = contact_page(staff_client)
    assert f"<bdi>{CUSTOMER_NAME}</bdi>" in page
    assert f'<dd class="mono">{CUSTOMER}</dd>' in page
    current = page.split("<h2>Current consent</h2>")[1].split("</section>")[0]
    assert current.count('class="badge withdrawn"') == 2
    assert "Order updates" in current and "Offers" in current
    assert current.count("<td>whatsapp</td>") == 2


def test_a_marketing_hold_after_metas_131049_is_shown_while_it_lasts(
    app: Flask, staff_client: FlaskClient, conversation: ChatSession
) -> None:
    assert "Marketing held" not in contact_page(staff_client)
    with session_scope(services(app).engine) as session:
        contact = find_contact(session, key=CUSTOMER)
        assert contact is not None
        hold_marketing(session, contact_id=contact.id, until=utcnow() + timedelta(hours=24))

    page = contact_page(staff_client)

    assert "<dt>Marketing held</dt>" in page
    assert "131049" in page


def test_the_transcript_runs_oldest_first_with_arabic_right_to_left(
    staff_client: FlaskClient, conversation: ChatSession
) -> None:
    page = contact_page(staff_client)
    messages = MESSAGE.findall(page)
    assert len(messages) == 7  # 4 typed; 3 replies (nothing answers a message after STOP)
    # Ordered by Meta's timestamp, which is whole seconds inbound: within one second an
    # inbound message may sort before the reply to the previous one, so each side is checked.
    times = [ISO_UTC.search(body).group(1) for _, body in messages]  # type: ignore[union-attr]
    assert times == sorted(times)
    inbound = [html.unescape(body) for direction, body in messages if direction == "in"]
    outbound = [html.unescape(body) for direction, body in messages if direction == "out"]
    assert "hello" in inbound[0] and "STOP" in inbound[2] and ARABIC_TEXT in inbound[3]
    assert "Nimbus Bakery would like to send you" in outbound[0]
    assert "Thank you. Nimbus Bakery will send you" in outbound[1]
    assert "You will no longer receive any messages" in outbound[2]
    assert f'<p class="text" dir="auto">{ARABIC_TEXT}</p>' in page
    for _, body in messages:
        assert ISO_UTC.search(body)
        assert re.search(r'<span class="tag">(text|interactive)</span>', body)
        assert re.search(r'<span class="status status-\w+">(received|sent|queued)</span>', body)


def test_customer_text_is_escaped_never_rendered_as_markup(app: Flask, staff_client) -> None:
    chat = ChatSession(app, wa_id="15550007777", name='<img src=x onerror="alert(1)">')
    chat.say("<script>alert('hi')</script>")
    page = contact_page(staff_client, "15550007777")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    listing = staff_client.get("/console/").get_data(as_text=True)
    assert "<img src=x" not in listing and "&lt;img src=x" in listing


def test_an_unknown_contact_is_a_404_page(staff_client: FlaskClient) -> None:
    response = staff_client.get("/console/contacts/15550000000")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "No such contact" in response.get_data(as_text=True)
    assert staff_client.get("/console/contacts/15550000000/export.json").status_code == 404


def test_the_export_download_is_the_gdpr_document_with_the_ledger(
    staff_client: FlaskClient, api, conversation: ChatSession
) -> None:
    page = contact_page(staff_client)
    assert f'href="/console/contacts/{CUSTOMER}/export.json"' in page
    response = staff_client.get(f"/console/contacts/{CUSTOMER}/export.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    document = json.loads(response.get_data())
    assert document["contact"]["wa_id"] == CUSTOMER
    events = document["consent_events"]
    assert [(e["category"], e["granted"]) for e in events] == [
        ("orders", True),
        ("offers", True),
        ("orders", False),
        ("offers", False),
    ]
    assert len(document["messages"]) == 7
    from_api = api.get(f"/contacts/{CUSTOMER}/export").get_json()
    assert {**document, "exported_at": None} == {**from_api, "exported_at": None}


def test_views_are_logged_with_the_number_masked(
    app: Flask, staff_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    converse(app)
    caplog.set_level(logging.INFO, logger="bot.console")
    staff_client.get("/console/")
    contact_page(staff_client)
    staff_client.get(f"/console/contacts/{CUSTOMER}/export.json")
    staff_client.get(f"/console/?q={CUSTOMER}")
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.console"]
    assert "console alice viewed ••••••••4567" in lines
    assert "console alice exported ••••••••4567" in lines
    assert any(line.startswith("console alice viewed the contact list") for line in lines)
    assert not any(CUSTOMER in r.getMessage() for r in caplog.records)


def test_c25_a_person_known_only_by_user_id_who_writes_after_erasure_shows_as_suppressed(
    staff_client: FlaskClient, meta: MetaWebhook, api: Api
) -> None:
    kai = "US.13491208655302741918"
    before = datetime.now(UTC) - timedelta(minutes=5)
    meta.post(simulate.text_body(wa_id=None, user_id=kai, text="hello", timestamp=before))
    assert api.delete(f"/contacts/{kai}").status_code == 204
    meta.post(simulate.text_body(wa_id=None, user_id=kai, text="hello again"))

    page = staff_client.get(f"/console/contacts/{kai}").get_data(as_text=True)

    assert "yes: nothing is sent to this number" in page
