"""Double opt-in: marketing consent collected off WhatsApp waits for a tap on WhatsApp."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from storage.db import session_scope
from storage.double_optin import (
    DOI_NO,
    DOI_YES,
    confirm_pending,
    decline_pending,
    pending_categories,
)
from storage.models import Contact, Message, OutboxItem
from tests.api.conftest import WA_ID, consent_body, grant
from tests.conftest import API_TOKEN

TEMPLATE = {"name": "weekly_offers", "language": "en"}


@pytest.fixture
def doi_app(make_app, double_opt_in_config):
    return make_app(OPTIN_CONFIG=double_opt_in_config)


@pytest.fixture
def doi_api(doi_app):
    from tests.conftest import Api

    return Api(doi_app.test_client())


def contact_id(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(Contact.id).where(Contact.wa_id == WA_ID)).one()


def confirmation_messages(engine) -> list[tuple[Message, OutboxItem]]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Message, OutboxItem)
                .join(OutboxItem, OutboxItem.message_id == Message.id)
                .where(Message.purpose == "double_opt_in")
            )
        )


def test_marketing_consent_from_the_web_waits_for_confirmation(doi_api, engine):
    answer = grant(doi_api, categories=["orders", "offers"])
    assert answer["consents"]["offers"] == answer["consents"]["offers"] | {
        "granted": True,
        "confirmed": False,
    }
    assert answer["consents"]["orders"]["confirmed"] is True  # not marketing: no confirmation
    assert answer["confirmation"]["status"] == "queued"
    assert answer["confirmation"]["categories"] == ["offers"]

    refused = doi_api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert refused.status_code == 403
    assert refused.json["error"] == "no_consent"
    assert "confirmation" in refused.json["message"]
    allowed = doi_api.post("/messages", {"to": WA_ID, "category": "orders", "template": TEMPLATE})
    assert allowed.status_code == 202


def test_the_confirmation_template_carries_the_quick_reply_payloads(doi_api, engine):
    answer = grant(doi_api)
    [(message, item)] = confirmation_messages(engine)
    assert message.id == answer["confirmation"]["message_id"]
    assert message.category is None  # the dispatcher must not hold it back for the consent
    template = item.payload["template"]
    assert template["name"] == "optin_confirmation"
    assert template["language"] == {"code": "en"}
    buttons = [
        (c["index"], c["sub_type"], c["parameters"][0]["payload"]) for c in template["components"]
    ]
    assert buttons == [("0", "quick_reply", DOI_YES), ("1", "quick_reply", DOI_NO)]


def test_the_audience_leaves_out_unconfirmed_consent(doi_api):
    grant(doi_api)
    assert doi_api.get("/audience?category=offers").data == b"wa_id,granted_at\n"


def test_confirming_makes_the_pending_categories_sendable_with_a_ledger_row(doi_api, engine):
    grant(doi_api)
    tapped = datetime.now(UTC)
    with session_scope(engine) as session:
        confirmed = confirm_pending(
            session,
            contact_id=contact_id(engine),
            occurred_at=tapped,
            evidence={"reply_wamid": "wamid.TAP"},
        )
    assert confirmed == ["offers"]
    response = doi_api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert response.status_code == 202
    last = doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"][-1]
    assert (last["category"], last["granted"], last["source"]) == ("offers", True, "whatsapp")
    assert last["evidence"] == {"reply_wamid": "wamid.TAP"}
    assert DOI_YES in last["text"]
    with Session(engine) as session:
        assert pending_categories(session, contact_id=contact_id(engine)) == []


def test_declining_withdraws_the_pending_categories(doi_api, engine):
    grant(doi_api)
    with session_scope(engine) as session:
        declined = decline_pending(
            session,
            contact_id=contact_id(engine),
            occurred_at=datetime.now(UTC),
            evidence={"reply_wamid": "wamid.NO"},
        )
    assert declined == ["offers"]
    assert doi_api.get(f"/contacts/{WA_ID}").json["consents"]["offers"]["granted"] is False
    last = doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"][-1]
    assert (last["granted"], last["source"]) == (False, "whatsapp")


def test_consent_given_on_whatsapp_needs_no_confirmation(doi_api, engine):
    answer = grant(doi_api, source="whatsapp")
    assert answer["consents"]["offers"]["confirmed"] is True
    assert answer["confirmation"] is None
    assert confirmation_messages(engine) == []


def test_already_confirmed_consent_stays_confirmed_when_reported_again(doi_api, engine):
    grant(doi_api, source="whatsapp")
    answer = grant(doi_api, source="paper")
    assert answer["consents"]["offers"]["confirmed"] is True
    assert answer["confirmation"] is None


def test_without_a_sender_the_confirmation_is_not_queued_and_says_why(
    make_app, double_opt_in_config, engine
):
    app = make_app(OPTIN_CONFIG=double_opt_in_config, WHATSAPP_PHONE_NUMBER_ID=None)
    response = app.test_client().post(
        "/api/v1/consents",
        json=consent_body(),
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code == 201
    confirmation = response.json["confirmation"]
    assert confirmation["status"] == "not_queued"
    assert "WHATSAPP_PHONE_NUMBER_ID" in confirmation["reason"]
    assert response.json["consents"]["offers"]["confirmed"] is False
    assert confirmation_messages(engine) == []


@pytest.mark.parametrize(("payload", "sendable"), [(DOI_YES, True), (DOI_NO, False)])
def test_the_contacts_tap_on_the_template_settles_it_through_the_webhook(
    doi_app, doi_api, engine, payload, sendable
):
    from bot.dev import simulate
    from bot.dev.chat import ChatSession

    grant(doi_api)
    customer = ChatSession(doi_app, wa_id=WA_ID)
    customer.dispatcher.drain()  # the confirmation template goes out and gets its wamid
    (template_wamid,) = [w for _, p, w in customer.transport.sent if p["type"] == "template"]
    replies = customer._post(
        simulate.template_button_body(
            wa_id=WA_ID,
            payload=payload,
            text="Yes" if payload == DOI_YES else "No",
            context_wamid=template_wamid,
        )
    )
    response = doi_api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert (response.status_code == 202) is sendable
    last = doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"][-1]
    assert last["evidence"]["prompt_wamid"] == template_wamid
    assert last["granted"] is sendable
    if sendable:
        assert "Offers" in replies[0].payload["text"]["body"]
