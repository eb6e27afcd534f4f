"""C28 in a real browser: headless Chromium opens the hosted page in English and in Arabic,
ticks both categories, enters a number written with spaces and sees the "confirm on WhatsApp"
page; the confirmation template reaches the fake Graph API, and after the person's signed
doi:yes tap exactly those categories are granted with source web."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from bot.dev import simulate
from bot.wiring.services import services
from tests.browser import POLL, chromium, screenshot
from tests.conftest import Api, MetaWebhook
from tests.fake_graph import FakeGraph

TOKEN = "test"
PEOPLE = {"en": ("+1 650 555 1234", "16505551234"), "ar": ("+971 50 123 4567", "971501234567")}


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(tokens={TOKEN}) as server:
        yield server


@pytest.fixture
def app_config(app_config: dict[str, str], fake: FakeGraph) -> dict[str, str]:
    return {**app_config, "WHATSAPP_ACCESS_TOKEN": TOKEN, "WHATSAPP_API_URL": fake.base_url}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    yield from chromium(tmp_path / "chromium-profile")


@pytest.mark.parametrize("language", ["en", "ar"])
def test_c28_a_person_opts_in_on_the_page_and_confirms_on_whatsapp(
    app: Flask,
    fake: FakeGraph,
    browser,  # type: ignore[no-untyped-def]
    live_server_factory: Callable[[Flask], str],
    language: str,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    typed, wa_id = PEOPLE[language]
    base = live_server_factory(app)
    wait = WebDriverWait(browser, 15, poll_frequency=POLL)

    browser.get(f"{base}/optin?lang={language}&source=shop-window")
    wait.until(ready.presence_of_element_located((By.NAME, "phone")))
    html = browser.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("dir") == ("rtl" if language == "ar" else "ltr")
    shown_heading = browser.find_element(By.TAG_NAME, "h1").text
    assert "Nimbus Bakery" in shown_heading
    boxes = browser.find_elements(By.CSS_SELECTOR, "input[type=checkbox][name=categories]")
    assert [b.get_attribute("value") for b in boxes] == ["orders", "offers"]
    assert not any(b.is_selected() for b in boxes)  # nothing ticked for the person
    screenshot(browser, "optin", f"{language}-1-page")

    for box in boxes:
        box.find_element(By.XPATH, "./ancestor::label").click()  # a tap on the label
    assert all(b.is_selected() for b in boxes)
    browser.find_element(By.NAME, "phone").send_keys(typed)
    screenshot(browser, "optin", f"{language}-2-filled")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(ready.url_contains("/optin/sent"))
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert heading == ("Confirm on WhatsApp" if language == "en" else "أكّد على واتساب")
    screenshot(browser, "optin", f"{language}-3-confirm-on-whatsapp")

    # The confirmation template goes out through the dispatcher to the fake Graph API.
    services(app).dispatcher().drain()
    [template] = [r for r in fake.deliveries() if r.to == wa_id]
    assert template.payload["type"] == "template"
    assert template.payload["template"]["name"] == "optin_confirmation"
    api = Api(app.test_client())
    consents = api.get(f"/contacts/{wa_id}").json["consents"]
    assert not any(c["granted"] for c in consents.values())  # nothing before the tap

    tap = simulate.template_button_body(
        wa_id=wa_id, payload="doi:yes", text="Yes", context_wamid=template.wamid
    )
    assert MetaWebhook(app.test_client()).post(tap).status_code == 200  # signed as Meta signs
    consents = api.get(f"/contacts/{wa_id}").json["consents"]
    assert {c: (v["granted"], v["source"]) for c, v in consents.items()} == {
        "orders": (True, "web"),
        "offers": (True, "web"),
    }
    events = api.get(f"/contacts/{wa_id}/consent-events").json["events"]
    assert [(e["category"], e["source"]) for e in events] == [("orders", "web"), ("offers", "web")]
    assert {e["evidence"]["entry_point"] for e in events} == {"shop-window"}
    assert {e["evidence"]["prompt_wamid"] for e in events} == {template.wamid}
    # The ledger quotes the page the person read, heading first.
    assert all(e["text"].startswith(shown_heading + "\n") for e in events)
