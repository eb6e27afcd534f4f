"""The console in a real browser: headless Chromium, driven by Selenium, against a live server.

Uses the system's chromium and chromedriver (Debian packages `chromium chromium-driver`), never
a downloaded driver. Without them the test is skipped, except under CI, where it fails.
Screenshots are kept in test-artifacts/console/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.browser import POLL, chromium, shows
from tests.conftest import ROOT
from tests.console.conftest import (
    ARABIC_TEXT,
    CUSTOMER,
    CUSTOMER_NAME,
    PASSWORD,
    STAFF,
    SUPPORT,
    converse,
)

ARTIFACTS = ROOT / "test-artifacts" / "console"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    # The network log gives each answer's status; the console log would show CSP violations.
    logs = {"goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"}}
    yield from chromium(tmp_path / "chromium-profile", width=1280, height=1600, capabilities=logs)


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    # Served over plain http on loopback, as in local development.
    return {**app_config, "CONSOLE_SECURE_COOKIES": "0"}


def test_staff_sign_in_find_the_contact_and_read_its_history(
    app: Flask,
    browser,  # type: ignore[no-untyped-def]
    live_server_factory: Callable[[Flask], str],
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    converse(app)
    converse(app, wa_id="15550001111", name="Someone Else")
    base = live_server_factory(app)
    wait = WebDriverWait(browser, 10, poll_frequency=POLL)

    browser.get(f"{base}/console/")
    wait.until(ready.presence_of_element_located((By.NAME, "username")))
    assert "/console/login" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys(STAFF)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(ready.presence_of_element_located((By.NAME, "q")))
    assert f"Signed in as {STAFF}" in browser.find_element(By.CLASS_NAME, "who").text

    search = browser.find_element(By.NAME, "q")
    search.send_keys("+971 50")
    search.submit()
    wait.until(ready.url_contains("q="))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.contacts tbody tr")
    assert len(rows) == 1
    browser.save_screenshot(str(tmp_path / "console-list.png"))
    assert CUSTOMER_NAME in rows[0].text

    rows[0].find_element(By.LINK_TEXT, CUSTOMER_NAME).click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.ledger")))
    assert browser.current_url.endswith(f"/console/contacts/{CUSTOMER}")

    ledger = browser.find_elements(By.CSS_SELECTOR, "table.ledger tr.ledger-row")
    assert len(ledger) == 4
    assert all(row.is_displayed() for row in ledger)
    assert [row.find_element(By.CSS_SELECTOR, ".badge").text for row in ledger] == [
        "granted",
        "granted",
        "withdrawn",
        "withdrawn",
    ]
    first_text = ledger[0].find_element(By.CSS_SELECTOR, "details .text")
    assert not first_text.is_displayed()  # folded until asked for
    ledger[0].find_element(By.TAG_NAME, "summary").click()
    assert "Nimbus Bakery would like to send you" in first_text.text

    messages = browser.find_elements(By.CSS_SELECTOR, "ol.transcript li.msg")
    assert len(messages) == 7
    arabic = browser.find_elements(By.CSS_SELECTOR, "ol.transcript li.msg.in .text")[-1]
    assert arabic.text == ARABIC_TEXT
    assert arabic.value_of_css_property("direction") == "rtl"
    assert arabic.is_displayed()
    reply = browser.find_elements(By.CSS_SELECTOR, "ol.transcript li.msg.out .text")[0]
    assert reply.value_of_css_property("direction") == "ltr"

    # The whole page in one picture, for a person to look at when a layout changes.
    screenshot = save_page(browser, "console-contact.png")
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


# --- roles, erasure, sign-out and the dashboard (C30) -----------------------------------------


def save_page(browser, name: str) -> Path:  # type: ignore[no-untyped-def]
    """The whole page in one picture, kept in test-artifacts/console/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 120, 8000))
    path = ARTIFACTS / name
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 1600)
    return path


def statuses(browser) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Each document's URL and the status it was answered with, from Chromium's network log."""
    import json

    seen: dict[str, int] = {}
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if message["params"].get("type") == "Document":
                seen[response["url"]] = response["status"]
    return seen


def csp_violations(browser) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]]


def browser_sign_in(browser, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{base}/console/login")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(browser, 10, poll_frequency=POLL).until(
        ready.presence_of_element_located((By.CLASS_NAME, "who"))
    )
    assert f"Signed in as {username}" in browser.find_element(By.CLASS_NAME, "who").text


def test_c30_support_finds_a_contact_by_its_last_digits_and_is_refused_erasure(
    app: Flask,
    browser,  # type: ignore[no-untyped-def]
    live_server_factory: Callable[[Flask], str],
    engine,  # type: ignore[no-untyped-def]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    converse(app)
    converse(app, wa_id="15550001111", name="Someone Else")
    base = live_server_factory(app)
    wait = WebDriverWait(browser, 10, poll_frequency=POLL)
    browser_sign_in(browser, base, SUPPORT)

    search = browser.find_element(By.NAME, "q")
    search.send_keys(CUSTOMER[-4:])  # the last digits, as a caller reads them out
    search.submit()
    wait.until(ready.url_contains("q="))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.contacts tbody tr")
    assert [CUSTOMER_NAME in row.text for row in rows] == [True]
    save_page(browser, "support-search.png")
    rows[0].find_element(By.LINK_TEXT, CUSTOMER_NAME).click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "ol.transcript")))

    arabic = browser.find_elements(By.CSS_SELECTOR, "ol.transcript li.msg.in .text")[-1]
    assert arabic.text == ARABIC_TEXT
    assert arabic.value_of_css_property("direction") == "rtl"
    assert browser.find_elements(By.ID, "erase") == []  # not offered to support
    assert browser.find_elements(By.PARTIAL_LINK_TEXT, "GDPR export") == []
    save_page(browser, "support-contact.png")

    # Refused even when the form is made by hand, with a valid CSRF token and the number.
    browser.execute_script(
        """
        const form = document.createElement("form");
        form.method = "post";
        form.action = arguments[0];
        for (const [name, value] of [["csrf_token", arguments[1]], ["confirm", arguments[2]]]) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
        """,
        f"/console/contacts/{CUSTOMER}/erase",
        browser.find_element(By.CSS_SELECTOR, "form.signout input[name=csrf_token]").get_attribute(
            "value"
        ),
        CUSTOMER,
    )
    wait.until(shows((By.TAG_NAME, "h1"), "Administrators only"))
    assert statuses(browser)[f"{base}/console/contacts/{CUSTOMER}/erase"] == 403
    save_page(browser, "support-refused-erasure.png")
    browser.get(f"{base}/console/contacts/{CUSTOMER}")
    assert browser.find_element(By.CSS_SELECTOR, "h1 bdi").text == CUSTOMER_NAME  # still there


def test_c30_an_admin_erases_with_the_typed_number_and_sees_it_in_the_audit_log(
    app: Flask,
    browser,  # type: ignore[no-untyped-def]
    live_server_factory: Callable[[Flask], str],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    converse(app)
    base = live_server_factory(app)
    wait = WebDriverWait(browser, 10, poll_frequency=POLL)
    browser_sign_in(browser, base, STAFF)
    browser.get(f"{base}/console/contacts/{CUSTOMER}")
    section = browser.find_element(By.ID, "erase")
    section.find_element(By.NAME, "confirm").send_keys("+971 50 123 4567")
    save_page(browser, "admin-erase-confirmation.png")
    section.find_element(By.CSS_SELECTOR, "button.destructive").click()

    wait.until(shows((By.TAG_NAME, "h1"), "Contact erased"))
    assert "••••••••4567" in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.LINK_TEXT, "See it in the audit log").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.audit")))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.audit tr.audit-row")
    assert len(rows) == 1
    cells = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[1:5] == ["console", STAFF, "contact_erased", "••••••••4567"]
    browser.get(f"{base}/console/audit")
    source = browser.page_source
    assert CUSTOMER not in source and "50 123 4567" not in source
    assert "contact_viewed" in source and "sign_in" in source
    save_page(browser, "admin-audit-log.png")
    browser.get(f"{base}/console/contacts/{CUSTOMER}")
    assert "No such contact" in browser.find_element(By.TAG_NAME, "h1").text


def test_c30_after_sign_out_a_copied_cookie_is_refused(
    app: Flask,
    browser,  # type: ignore[no-untyped-def]
    live_server_factory: Callable[[Flask], str],
) -> None:
    import requests
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    base = live_server_factory(app)
    browser_sign_in(browser, base, STAFF)
    copied = browser.get_cookie("optin_console")
    assert copied is not None and copied["httpOnly"]
    cookies = {"optin_console": copied["value"]}
    answer = requests.get(f"{base}/console/", cookies=cookies, allow_redirects=False, timeout=10)
    assert answer.status_code == 200  # a copy works while the session lives

    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    WebDriverWait(browser, 10, poll_frequency=POLL).until(ready.url_contains("/console/login"))
    browser.delete_all_cookies()
    browser.add_cookie({k: copied[k] for k in ("name", "value", "path", "httpOnly")})
    browser.get(f"{base}/console/")

    assert "/console/login" in browser.current_url  # the copy opens nothing
    assert browser.find_elements(By.CLASS_NAME, "who") == []
    answer = requests.get(f"{base}/console/", cookies=cookies, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/login")
    save_page(browser, "copied-cookie-refused.png")


def test_the_dashboard_renders_its_charts(
    app: Flask,
    browser,  # type: ignore[no-untyped-def]
    live_server_factory: Callable[[Flask], str],
    activity,  # type: ignore[no-untyped-def]
    webhook_backlog,  # type: ignore[no-untyped-def]
) -> None:
    from selenium.webdriver.common.by import By

    base = live_server_factory(app)
    browser_sign_in(browser, base, SUPPORT)
    browser.find_element(By.LINK_TEXT, "Dashboard").click()

    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 6
    assert all(chart.is_displayed() and chart.size["width"] > 300 for chart in charts)
    opt_in = browser.find_element(By.CSS_SELECTOR, "#category-offers svg rect.in")
    assert opt_in.size["height"] > 10
    # Coloured by the stylesheet: the CSP allows no inline style, and none was needed.
    assert opt_in.value_of_css_property("fill") == "rgb(28, 124, 58)"
    bars = browser.find_elements(By.CSS_SELECTOR, "#reasons svg rect.out")
    assert len(bars) == 5
    # The consent webhook backlog: new rows in the outbox's colours, failing ones in red.
    webhooks = browser.find_element(By.CSS_SELECTOR, "#consent-webhooks svg.chart")
    assert webhooks.is_displayed() and webhooks.size["width"] > 300
    failing = webhooks.find_elements(By.CSS_SELECTOR, "rect.failing")
    assert len(failing) == 2
    assert all(bar.is_displayed() and bar.size["width"] > 10 for bar in failing)
    assert {bar.value_of_css_property("fill") for bar in failing} == {"rgb(161, 42, 42)"}
    due = webhooks.find_element(By.CSS_SELECTOR, "rect.state-due:not(.failing)")
    assert due.value_of_css_property("fill") != "rgb(161, 42, 42)"
    values = [t.text for t in webhooks.find_elements(By.CSS_SELECTOR, "text.value")]
    assert values == ["2", "1", "0", "1", "2", "0"]  # in the order of the labels
    caption = browser.find_element(By.ID, "consent-webhooks").text
    assert "6 consent changes not yet accepted" in caption and "HTTP 500: 2" in caption
    assert csp_violations(browser) == []
    assert statuses(browser)[f"{base}/console/dashboard"] == 200
    save_page(browser, "dashboard.png")
