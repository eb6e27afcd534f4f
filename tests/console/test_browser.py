"""The console in a real browser: headless Chromium, driven by Selenium, against a live server.

Uses the system's chromium and chromedriver (Debian packages `chromium chromium-driver`), never
a downloaded driver. Without them the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.console.conftest import ARABIC_TEXT, CUSTOMER, CUSTOMER_NAME, PASSWORD, STAFF, converse

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver (and pip install selenium)"


def unavailable(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{problem}: CI must provide the browser ({INSTALL_HINT}; see .ci/run)")
    pytest.skip(f"{problem}; to run this test: {INSTALL_HINT}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        unavailable(f"{', '.join(missing)} not found")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("the selenium package is not installed")

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    # A driver path given explicitly means Selenium Manager is never run (it would download).
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


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
    wait = WebDriverWait(browser, 10)

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
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 120, 8000))
    screenshot = tmp_path / "console-contact.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")
