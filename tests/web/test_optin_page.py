"""C28: the hosted opt-in page. It names the company, WhatsApp and each category with an unticked
box and the privacy notice; a choice made on it is only pending, and nothing is granted until
the person taps doi:yes on the template sent to them on WhatsApp."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from bot.dev import simulate
from bot.web import wording
from bot.web.guard import POSTS_PER_ADDRESS, SUBMISSIONS_PER_NUMBER
from bot.wiring.services import services
from storage.models import ConsentEvent, Message, WebOptinRequest
from storage.suppression import suppress
from tests.api.conftest import OTHER_WA_ID, WA_ID
from tests.conftest import Api, MetaWebhook
from tests.web.conftest import form_fields

SPACED = "+1 650 555 1234"  # WA_ID, as a person types it


def post(client, *, phone=SPACED, categories=("orders", "offers"), lang="en", **fields):
    data = {**form_fields(client, f"/optin?lang={lang}"), "lang": lang, "phone": phone}
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/optin", data={**data, "categories": list(categories)})


def templates_to(engine, wa_id: str = WA_ID) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count())
            .select_from(Message)
            .where(Message.purpose == "double_opt_in", Message.raw["to"].as_string() == wa_id)
        ).one()


def requests_of(engine) -> list[WebOptinRequest]:
    with Session(engine) as session:
        return list(session.exec(select(WebOptinRequest).order_by(WebOptinRequest.id)))


def ledger(engine) -> list[ConsentEvent]:
    with Session(engine) as session:
        return list(session.exec(select(ConsentEvent).order_by(ConsentEvent.id)))


def tap_yes(app, *, wamid: str = "wamid.TAP", payload: str = "doi:yes") -> None:
    body = simulate.template_button_body(wa_id=WA_ID, payload=payload, text="Yes", wamid=wamid)
    assert MetaWebhook(app.test_client()).post(body).status_code == 200


@pytest.mark.parametrize(
    ("lang", "direction", "words"),
    [
        ("en", "ltr", ["Nimbus Bakery", "WhatsApp", "Order updates", "Shipping and delivery news"]),
        ("ar", "rtl", ["Nimbus Bakery", "واتساب", "تحديثات الطلبات", "الخصومات والمنتجات الجديدة"]),
    ],
)
def test_c28_the_page_names_company_whatsapp_and_each_category_unticked(
    client, lang, direction, words
):
    response = client.get(f"/optin?lang={lang}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<html lang="{lang}" dir="{direction}">' in page
    for word in words:
        assert word in page
    boxes = re.findall(r'<input type="checkbox" name="categories" value="(\w+)"([^>]*)>', page)
    assert [value for value, _ in boxes] == ["orders", "offers"]
    assert all("checked" not in rest for _, rest in boxes)
    assert "https://nimbus.example/privacy" in page
    assert 'name="phone"' in page and 'name="csrf_token"' in page
    assert response.headers["Cache-Control"] == "no-store"


def test_the_page_speaks_the_browsers_language(client):
    page = client.get("/optin", headers={"Accept-Language": "ar,en;q=0.5"}).get_data(as_text=True)
    assert 'dir="rtl"' in page


def test_the_page_may_be_framed_only_by_the_named_sites(client):
    policy = client.get("/optin").headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://shop.nimbus.example;" in policy


@pytest.mark.parametrize("token", [None, "", "forged.token.value"])
def test_c28_a_missing_or_wrong_token_is_400_and_records_nothing(client, engine, token):
    response = post(client, csrf_token=token)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert requests_of(engine) == [] and templates_to(engine) == 0


def test_a_token_serves_one_submission(client, engine):
    fields = form_fields(client)
    data = {**fields, "lang": "en", "phone": SPACED, "categories": ["orders"]}
    assert client.post("/optin", data=data).status_code == 303
    assert client.post("/optin", data=data).status_code == 400


def test_c28_a_choice_is_pending_and_the_template_is_queued(client, engine):
    response = post(client, source="poster-7")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/optin/sent?lang=en")
    sent = client.get(response.headers["Location"])
    assert "Confirm on WhatsApp" in sent.get_data(as_text=True)
    assert templates_to(engine) == 1
    [request] = requests_of(engine)
    page = wording.page(services(client.application).catalog, "en")
    assert (request.categories, request.text, request.text_version) == (
        ["orders", "offers"],
        page.text,
        page.version,
    )
    assert request.evidence["entry_point"] == "poster-7"
    assert "127.0.0.1" not in str(request.evidence)  # a keyed hash, never the address
    assert ledger(engine) == []  # nothing granted yet
    consents = Api(client).get(f"/contacts/{WA_ID}").json["consents"]
    assert not consents["orders"]["granted"] and not consents["offers"]["granted"]


@pytest.mark.parametrize(
    ("phone", "categories", "problem"),
    [
        ("12", ("orders",), "This does not look like a phone number"),
        ("+1 650 555 12345678", ("orders",), "This does not look like a phone number"),
        ("", ("orders",), "This does not look like a phone number"),
        (SPACED, (), "Tick at least one kind of message"),
    ],
)
def test_a_bad_number_or_no_choice_is_shown_clearly(client, engine, phone, categories, problem):
    response = post(client, phone=phone, categories=categories)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert problem in page
    assert 'role="alert"' in page
    assert templates_to(engine) == 0


@pytest.mark.parametrize("spelling", ["+1 (650) 555-1234", "001 650 555 1234", "(650) 555-1234"])
def test_any_usual_spelling_of_the_number_is_read(client, engine, spelling):
    assert post(client, phone=spelling).status_code == 303
    assert templates_to(engine) == 1


def test_c28_the_same_number_gets_one_template_a_day_and_the_latest_choice(client, engine):
    assert post(client, categories=("orders",)).status_code == 303
    assert post(client, categories=("offers",)).status_code == 303
    assert templates_to(engine) == 1
    first, second = requests_of(engine)
    assert (first.state, second.state) == ("replaced", "pending")
    tap_yes(client.application)
    assert [(e.category, e.source) for e in ledger(engine)] == [("offers", "web")]


def test_a_day_later_the_number_may_be_asked_again(client, engine):
    assert post(client).status_code == 303
    with Session(engine) as session:
        for request in session.exec(select(WebOptinRequest)):
            request.template_queued_at -= timedelta(days=1, minutes=1)
            session.add(request)
        session.commit()
    assert post(client).status_code == 303
    assert templates_to(engine) == 2


def test_abuse_limits_per_client_address(client, engine):
    for _ in range(POSTS_PER_ADDRESS):
        post(client, phone="12")
    response = post(client)
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    assert templates_to(engine) == 0


def test_abuse_limits_per_number(client, engine):
    for _ in range(SUBMISSIONS_PER_NUMBER):
        assert post(client).status_code == 303
    assert post(client).status_code == 429
    assert post(client, phone="+971 50 123 4567").status_code == 303  # another number: fine
    assert templates_to(engine, OTHER_WA_ID) == 1


def test_a_page_changed_while_open_is_shown_again(client, engine):
    response = post(client, version="0000000000000000")
    assert response.status_code == 409
    assert "This page was updated" in response.get_data(as_text=True)
    assert templates_to(engine) == 0


def test_an_erased_number_is_not_written_to_but_the_page_says_the_same(client, engine):
    with Session(engine) as session:
        suppress(
            session,
            key=services(client.application).settings.suppression_key,
            wa_id=WA_ID,
            reason="erasure",
        )
        session.commit()
    assert post(client).status_code == 303
    assert templates_to(engine) == 0 and requests_of(engine) == []


def test_c28_the_tap_grants_exactly_the_ticked_categories_with_source_web(client, engine):
    assert post(client, categories=("offers",), source="flyer", lang="ar").status_code == 303
    page = wording.page(services(client.application).catalog, "ar")
    tap_yes(client.application)
    [row] = ledger(engine)
    assert (row.category, row.granted, row.source) == ("offers", True, "web")
    assert (row.text, row.text_version) == (page.text, page.version)
    assert row.evidence["entry_point"] == "flyer"
    assert row.evidence["reply_wamid"] == "wamid.TAP"
    assert len(row.evidence["client"]) == 32
    consents = Api(client).get(f"/contacts/{WA_ID}").json["consents"]
    assert consents["offers"] == consents["offers"] | {"granted": True, "source": "web"}
    assert consents["orders"]["granted"] is False
    assert [r.state for r in requests_of(engine)] == ["confirmed"]


def test_c28_doi_no_grants_nothing(client, engine):
    assert post(client).status_code == 303
    tap_yes(client.application, payload="doi:no")
    assert ledger(engine) == []
    assert [r.state for r in requests_of(engine)] == ["declined"]


def test_the_page_is_not_served_unless_enabled(make_app):
    app = make_app(OPTIN_CONFIG=None)  # the shipped optin.toml: web_optin disabled
    client = app.test_client()
    assert client.get("/optin").status_code == 404
    assert client.post("/optin", data={}).status_code == 404


def test_without_a_sender_nothing_is_recorded_and_the_page_says_so(make_app, engine):
    app = make_app(WHATSAPP_PHONE_NUMBER_ID=None)
    response = post(app.test_client())
    assert response.status_code == 503
    assert "cannot be sent right now" in response.get_data(as_text=True)
    assert requests_of(engine) == []


def test_c17_the_export_holds_the_choices_made_on_the_page(client, engine):
    assert post(client, source="poster-7").status_code == 303
    export = Api(client).get(f"/contacts/{WA_ID}/export").json
    [request] = export["web_optin_requests"]
    assert request["categories"] == ["orders", "offers"]
    assert request["state"] == "pending"
    assert request["evidence"]["entry_point"] == "poster-7"


def test_c18_erasure_removes_the_choices_made_on_the_page(client, engine):
    assert post(client).status_code == 303
    assert Api(client).delete(f"/contacts/{WA_ID}").status_code == 204
    assert requests_of(engine) == []


def test_behind_a_trusted_proxy_the_limits_see_the_customers_address(make_app, engine):
    client = make_app(TRUSTED_PROXY_HOPS="1").test_client()
    for _ in range(POSTS_PER_ADDRESS):
        client.post(
            "/optin",
            data={**form_fields(client), "lang": "en", "phone": "12", "categories": ["orders"]},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
    data = {**form_fields(client), "lang": "en", "phone": SPACED, "categories": ["orders"]}
    refused = client.post("/optin", data=data, headers={"X-Forwarded-For": "198.51.100.7"})
    assert refused.status_code == 429
    data = {**form_fields(client), "lang": "en", "phone": SPACED, "categories": ["orders"]}
    other = client.post("/optin", data=data, headers={"X-Forwarded-For": "203.0.113.9"})
    assert other.status_code == 303
    [request] = requests_of(engine)
    assert "203.0.113.9" not in str(request.evidence)
