"""POST /api/v1/messages and GET /api/v1/messages/{id}: consent (C14) and the 24-hour window
(C15) are checked before anything reaches the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from bot.dev import simulate
from bot.wiring.services import services
from storage.db import session_scope
from storage.models import Contact, Message, OutboxItem
from storage.outbox import claim_due
from storage.types import utcnow
from tests.api.conftest import PHONE_NUMBER_ID, WA_ID, count, grant, hours_ago, say

TEMPLATE = {"name": "weekly_offers", "language": "en_US", "components": []}


def business_sends(engine) -> int:
    return count(engine, Message, Message.purpose == "business")


def queued(engine, message_id: str) -> OutboxItem | None:
    with Session(engine) as session:
        return session.exec(select(OutboxItem).where(OutboxItem.message_id == message_id)).first()


def test_c14_a_send_for_a_category_never_granted_is_refused_before_the_outbox(api, meta, engine):
    say(meta)
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "text": "10% off"})
    assert response.status_code == 403
    assert response.json["error"] == "no_consent"
    assert business_sends(engine) == 0


def test_c14_consent_to_one_category_does_not_cover_another(api, meta, engine):
    say(meta)
    grant(api, categories=["orders"])
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert response.status_code == 403
    assert response.json["error"] == "no_consent"
    assert business_sends(engine) == 0


def test_c14_a_withdrawn_consent_stops_sends(api, engine):
    grant(api, collected_at=hours_ago(3).isoformat())
    grant(api, granted=False, collected_at=hours_ago(2).isoformat())
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert response.status_code == 403
    assert response.json["error"] == "no_consent"
    assert business_sends(engine) == 0


def test_c14_an_unknown_number_has_granted_nothing(api, engine):
    response = api.post("/messages", {"to": "+1 650 555 0000", "category": "orders", "text": "hi"})
    assert response.status_code == 403
    assert response.json["error"] == "no_consent"
    assert business_sends(engine) == 0


def test_c14_a_granted_category_is_queued_to_the_outbox(api, meta, engine):
    say(meta)
    grant(api, categories=["offers"])
    response = api.post("/messages", {"to": "+1 650-555-1234", "category": "offers", "text": "Hi"})
    assert response.status_code == 202
    assert response.json["status"] == "queued"
    item = queued(engine, response.json["id"])
    assert item is not None
    assert item.phone_number_id == PHONE_NUMBER_ID
    assert item.payload["to"] == WA_ID
    assert item.payload["text"]["body"] == "Hi"
    with Session(engine) as session:
        message = session.get(Message, response.json["id"])
        assert (message.category, message.purpose, message.status) == (
            "offers",
            "business",
            "queued",
        )


def test_answers_to_a_person_are_claimed_before_business_sends_queued_earlier(api, meta, engine):
    say(meta)
    grant(api, categories=["offers"])
    sends = set()
    for n in range(3):
        response = api.post("/messages", {"to": WA_ID, "category": "offers", "text": f"{n}"})
        sends.add(response.json["id"])
    say(meta, text="HELP")  # its answer is queued after the business sends

    with session_scope(engine) as session:
        claimed = claim_due(session, worker="test", limit=100, lease=timedelta(seconds=30))

    is_business = [row.message_id in sends for row in claimed]
    assert is_business.count(True) == 3
    assert is_business.count(False) >= 2  # at least the two answers (and read receipts)
    assert is_business == sorted(is_business), "an answer waited behind a business send"


def hold_marketing_until(engine, until) -> None:
    """What the dispatcher records when Meta answers 131049 (tests/outbound covers that part)."""
    with session_scope(engine) as session:
        contact = session.exec(select(Contact).where(Contact.wa_id == WA_ID)).one()
        contact.marketing_held_until = until
        session.add(contact)


def test_after_metas_131049_marketing_sends_are_refused_429_until_the_hold_ends(api, meta, engine):
    say(meta)
    grant(api, categories=["orders", "offers"])
    hold_marketing_until(engine, utcnow() + timedelta(hours=23))

    refused = api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert refused.status_code == 429
    assert refused.json["error"] == "marketing_limited"
    assert "131049" in refused.json["message"]
    assert 22 * 3600 < int(refused.headers["Retry-After"]) <= 23 * 3600
    contact = api.get(f"/contacts/{WA_ID}").json
    assert contact["marketing_held_until"] is not None
    # Not a marketing category: sent as usual.
    order = api.post("/messages", {"to": WA_ID, "category": "orders", "text": "Shipped"})
    assert order.status_code == 202

    hold_marketing_until(engine, utcnow() - timedelta(seconds=1))
    again = api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert again.status_code == 202


def test_c15_free_text_more_than_24_hours_after_the_last_message_is_refused(api, meta, engine):
    say(meta, at=hours_ago(25))
    grant(api)
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "text": "Hello again"})
    assert response.status_code == 422
    assert response.json["error"] == "outside_service_window"
    assert "template" in response.json["message"]
    assert business_sends(engine) == 0


def test_c15_free_text_to_someone_who_never_wrote_is_refused(api, engine):
    grant(api)
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "text": "Hello"})
    assert response.status_code == 422
    assert response.json["error"] == "outside_service_window"


def test_c15_a_template_is_allowed_outside_the_window(api, meta, engine):
    say(meta, at=hours_ago(72))
    grant(api)
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert response.status_code == 202
    item = queued(engine, response.json["id"])
    assert item.payload["type"] == "template"
    assert item.payload["template"]["name"] == "weekly_offers"
    assert item.payload["template"]["language"] == {"code": "en_US"}


def test_c15_free_text_inside_the_window_is_allowed(api, meta):
    say(meta, at=hours_ago(23))
    grant(api)
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "text": "Still there?"})
    assert response.status_code == 202


def test_unknown_category_is_422(api):
    response = api.post("/messages", {"to": WA_ID, "category": "lottery", "text": "hi"})
    assert response.status_code == 422
    assert response.json["error"] == "unknown_category"
    assert response.json["message"].startswith("category:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "offers", "text": "hi"}, "to"),
        ({"to": "12", "category": "offers", "text": "hi"}, "to"),
        ({"to": WA_ID, "text": "hi"}, "category"),
        ({"to": WA_ID, "category": "offers"}, "text"),
        ({"to": WA_ID, "category": "offers", "text": "hi", "template": TEMPLATE}, "text"),
        ({"to": WA_ID, "category": "offers", "text": " "}, "text"),
        ({"to": WA_ID, "category": "offers", "text": "x" * 4097}, "text"),
        ({"to": WA_ID, "category": "offers", "template": "weekly"}, "template"),
        ({"to": WA_ID, "category": "offers", "template": {"language": "en"}}, "template.name"),
        ({"to": WA_ID, "category": "offers", "template": {"name": "x"}}, "template.language"),
        (
            {"to": WA_ID, "category": "offers", "template": TEMPLATE | {"components": "x"}},
            "template.components",
        ),
    ],
)
def test_a_bad_send_is_422_naming_the_field(api, meta, engine, body, field):
    say(meta)
    grant(api)
    response = api.post("/messages", body)
    assert response.status_code == 422
    assert response.json["message"].startswith(f"{field}:")
    assert business_sends(engine) == 0


def test_without_a_sender_a_business_send_is_503_with_a_clear_message(make_app, api, engine):
    grant(api)
    no_sender = make_app(WHATSAPP_PHONE_NUMBER_ID=None).test_client()
    response = no_sender.post(
        "/api/v1/messages",
        json={"to": WA_ID, "category": "offers", "template": TEMPLATE},
        headers=api.headers,
    )
    assert response.status_code == 503
    assert response.json["error"] == "sender_not_configured"
    assert "WHATSAPP_PHONE_NUMBER_ID" in response.json["message"]
    assert business_sends(engine) == 0


def test_without_a_token_nothing_is_sent(client, engine):
    response = client.post("/api/v1/messages", json={"to": WA_ID, "category": "orders"})
    assert response.status_code == 401
    assert business_sends(engine) == 0


def test_a_retried_send_with_the_same_idempotency_key_is_queued_once(api, meta, engine):
    grant(api)
    body = {"to": WA_ID, "category": "offers", "template": TEMPLATE}
    first = api.post("/messages", body, headers={"Idempotency-Key": "campaign-7:16505551234"})
    again = api.post("/messages", body, headers={"Idempotency-Key": "campaign-7:16505551234"})
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert business_sends(engine) == 1


def test_get_message_follows_it_from_queued_to_read(app, api, meta):
    grant(api)
    message_id = api.post(
        "/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE}
    ).json["id"]
    shown = api.get(f"/messages/{message_id}")
    assert shown.status_code == 200
    assert shown.json["status"] == "queued"
    assert shown.json["wamid"] is None
    assert shown.json["error"] is None

    services(app).dispatcher(concurrency=1).drain()
    sent = api.get(f"/messages/{message_id}").json
    assert sent["status"] == "sent"
    assert sent["wamid"]

    for status in ("delivered", "read"):
        meta.post(simulate.status_body(wamid=sent["wamid"], status=status, recipient_id=WA_ID))
        assert api.get(f"/messages/{message_id}").json["status"] == status


def test_get_message_reports_meta_failures_with_the_error(app, api, meta):
    grant(api)
    message_id = api.post(
        "/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE}
    ).json["id"]
    services(app).dispatcher(concurrency=1).drain()
    wamid = api.get(f"/messages/{message_id}").json["wamid"]
    meta.post(
        simulate.status_body(wamid=wamid, status="failed", recipient_id=WA_ID, errors=[131026])
    )
    shown = api.get(f"/messages/{message_id}").json
    assert shown["status"] == "failed"
    assert shown["error"]["code"] == 131026


def test_get_message_reports_a_cancelled_send_as_failed_with_the_reason(app, api, meta):
    say(meta)
    grant(api)
    message_id = api.post("/messages", {"to": WA_ID, "category": "offers", "text": "hi"}).json["id"]
    say(meta, text="STOP")  # withdraws everything and cancels what has not gone out (C07)
    services(app).dispatcher(concurrency=1).drain()
    shown = api.get(f"/messages/{message_id}").json
    assert shown["status"] == "failed"
    assert shown["error"]["code"] is None
    assert shown["error"]["title"].startswith("cancelled")


def test_get_message_unknown_or_inbound_is_404(api, meta, engine):
    assert api.get("/messages/nope").status_code == 404
    say(meta)
    with Session(engine) as session:
        inbound = session.exec(select(Message).where(Message.direction == "in")).one()
    response = api.get(f"/messages/{inbound.id}")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
