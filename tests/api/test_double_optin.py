"""Double opt-in: marketing consent collected off WhatsApp waits for a tap on WhatsApp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.dev import simulate
from flows.signals import DOI_NO, DOI_YES
from storage.double_optin import pending_categories
from storage.models import Contact, Message, OutboxItem
from tests.api.conftest import WA_ID, consent_body, grant
from tests.conftest import API_TOKEN, MetaWebhook

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


def tap(app, payload: str, *, wamid: str, at: datetime | None = None) -> None:
    """The contact taps a quick reply of the confirmation template (no quoted message)."""
    body = simulate.template_button_body(
        wa_id=WA_ID,
        payload=payload,
        text="Yes" if payload == DOI_YES else "No",
        wamid=wamid,
        timestamp=at,
    )
    response = MetaWebhook(app.test_client()).post(body)
    assert response.status_code == 200, response.data


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
    assert doi_api.get("/audience?category=offers").data == b"wa_id,user_id,granted_at\n"


def test_confirming_makes_the_pending_categories_sendable_with_a_ledger_row(
    doi_app, doi_api, engine
):
    grant(doi_api, categories=["orders", "offers"])
    before = len(doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"])
    tap(doi_app, DOI_YES, wamid="wamid.TAP")
    events = doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"]
    # One row, for the one category that awaited the tap.
    (row,) = events[before:]
    assert (row["category"], row["granted"], row["source"]) == ("offers", True, "whatsapp")
    assert row["evidence"] == {"reply_wamid": "wamid.TAP"}
    assert DOI_YES in row["text"]
    response = doi_api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert response.status_code == 202
    with Session(engine) as session:
        assert pending_categories(session, contact_id=contact_id(engine)) == []


def test_declining_withdraws_the_pending_categories(doi_app, doi_api, engine):
    grant(doi_api, categories=["orders", "offers"])
    before = len(doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"])
    tap(doi_app, DOI_NO, wamid="wamid.NO")
    (row,) = doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"][before:]
    assert (row["category"], row["granted"], row["source"]) == ("offers", False, "whatsapp")
    assert row["evidence"] == {"reply_wamid": "wamid.NO"}
    assert DOI_NO in row["text"]
    consents = doi_api.get(f"/contacts/{WA_ID}").json["consents"]
    assert consents["offers"]["granted"] is False
    assert consents["orders"]["granted"] is True  # not awaiting the tap: left as it was
    with Session(engine) as session:
        assert pending_categories(session, contact_id=contact_id(engine)) == []


def test_a_tap_older_than_the_reported_consent_still_confirms_it(doi_app, doi_api, engine):
    # The business's collected_at may run a little ahead of Meta's clock; the yes still counts.
    now = datetime.now(UTC)
    grant(doi_api, collected_at=(now + timedelta(minutes=2)).isoformat())
    tap(doi_app, DOI_YES, wamid="wamid.TAP", at=now)
    response = doi_api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert response.status_code == 202
    with Session(engine) as session:
        assert pending_categories(session, contact_id=contact_id(engine)) == []


def test_a_decline_that_loses_to_a_newer_decision_stays_pending_and_unsendable(
    doi_app, doi_api, engine
):
    now = datetime.now(UTC)
    grant(doi_api, collected_at=(now + timedelta(minutes=2)).isoformat())
    tap(doi_app, DOI_NO, wamid="wamid.NO", at=now)
    events = doi_api.get(f"/contacts/{WA_ID}/consent-events").json["events"]
    (row,) = [e for e in events if e["evidence"].get("reply_wamid") == "wamid.NO"]
    assert (row["granted"], row["source"]) == (False, "whatsapp")  # kept in the ledger
    refused = doi_api.post("/messages", {"to": WA_ID, "category": "offers", "template": TEMPLATE})
    assert refused.status_code == 403
    with Session(engine) as session:
        assert pending_categories(session, contact_id=contact_id(engine)) == ["offers"]


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
