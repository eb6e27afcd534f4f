"""GET /api/v1/audience?category=X: streamed CSV of everyone who may receive X now."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.consents import append_decision
from storage.contacts import lock_contact
from storage.db import session_scope
from storage.models import Consent, Contact
from tests.api.conftest import OTHER_WA_ID, WA_ID, consent_body, grant, say

THIRD = "447911123456"


def csv_lines(response) -> list[str]:
    return response.get_data(as_text=True).splitlines()


def audience_of(api, category: str = "offers") -> list[str]:
    return [line.split(",")[0] for line in csv_lines(api.get(f"/audience?category={category}"))[1:]]


def test_audience_lists_everyone_granted_now_as_streamed_csv(api):
    grant(api, WA_ID, collected_at="2025-03-01T13:30:00+04:00")
    grant(api, OTHER_WA_ID, categories=["orders", "offers"])
    grant(api, THIRD, categories=["orders"])  # another category only

    response = api.get("/audience?category=offers")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = csv_lines(response)
    assert lines[0] == "wa_id,user_id,granted_at"
    rows = {wa_id: at for wa_id, user_id, at in (line.split(",") for line in lines[1:])}
    assert set(rows) == {WA_ID, OTHER_WA_ID}
    assert rows[WA_ID] == "2025-03-01T09:30:00.000000+00:00"
    assert datetime.fromisoformat(rows[OTHER_WA_ID]).tzinfo is not None


def test_audience_leaves_out_withdrawn_consent(api):
    grant(api, WA_ID, collected_at="2025-03-01T09:00:00Z")
    grant(api, WA_ID, granted=False, collected_at="2025-03-02T09:00:00Z")
    grant(api, OTHER_WA_ID)
    lines = csv_lines(api.get("/audience?category=offers"))
    assert [line.split(",")[0] for line in lines] == ["wa_id", OTHER_WA_ID]


def test_c27_audience_names_contacts_known_only_by_user_id_by_it(api, engine):
    """A person without a phone number is reached by user id: listed with an empty wa_id."""
    with session_scope(engine) as session:
        contact = lock_contact(session, wa_id=None, user_id="US.13491208655302741918")
        append_decision(
            session,
            contact_id=contact.id,
            category="offers",
            granted=True,
            source="whatsapp",
            occurred_at=datetime.now(UTC),
            text="yes",
            text_version="v",
            evidence={},
        )
    lines = csv_lines(api.get("/audience?category=offers"))
    assert lines[0] == "wa_id,user_id,granted_at"
    assert [line.split(",")[:2] for line in lines[1:]] == [["", "US.13491208655302741918"]]


def test_erased_numbers_stay_out_until_their_own_opt_in_on_whatsapp(api, meta):
    """Suppressed numbers are left out by construction: nothing grants them consent unless the
    person opts in on WhatsApp, which lifts the suppression."""
    grant(api, WA_ID)
    grant(api, OTHER_WA_ID)
    api.delete(f"/contacts/{WA_ID}")
    assert audience_of(api) == [OTHER_WA_ID]
    say(meta, WA_ID, text="hello")  # writing again re-creates the contact, granting nothing
    assert api.post("/consents", consent_body(WA_ID)).status_code == 409
    assert audience_of(api) == [OTHER_WA_ID]
    say(meta, WA_ID, text="yes")  # the prompt's explicit yes (C02) lifts the suppression
    assert api.get(f"/contacts/{WA_ID}").json["suppressed"] is False
    assert audience_of(api) == [OTHER_WA_ID, WA_ID]


def test_audience_is_in_contact_order_across_many_chunks(api, engine):
    # Enough rows to need several writes to the client.
    at = datetime(2025, 1, 1, tzinfo=UTC)
    with session_scope(engine) as session:
        contacts = [Contact(wa_id=f"1650555{n:04d}") for n in range(3000)]
        session.add_all(contacts)
        session.flush()
        session.add_all(
            Consent(
                contact_id=c.id,
                category="orders",
                granted=True,
                source="web",
                updated_at=at,
                granted_at=at,
            )
            for c in contacts
        )
    response = api.get("/audience?category=orders")
    chunks = list(response.response)
    assert len(chunks) > 1
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == 3001
    assert lines[1:3] == [
        "16505550000,,2025-01-01T00:00:00.000000+00:00",
        "16505550001,,2025-01-01T00:00:00.000000+00:00",
    ]


def test_audience_of_an_unknown_or_missing_category_is_422(api):
    unknown = api.get("/audience?category=lottery")
    assert unknown.status_code == 422
    assert unknown.json["error"] == "unknown_category"
    missing = api.get("/audience")
    assert missing.status_code == 422
    assert missing.json["message"].startswith("category:")


def test_audience_needs_a_token(client):
    assert client.get("/api/v1/audience?category=offers").status_code == 401
