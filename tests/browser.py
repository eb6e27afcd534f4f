"""Headless Chromium for the browser tests: the system's chromium and chromedriver (Debian
packages `chromium chromium-driver`), never a downloaded driver; skipped without them, except
under CI, where that is a failure. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver (and pip install selenium)"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# How often a WebDriverWait looks again: the page changes in another process, with nothing to
# wait on but its state; selenium's half a second would be most of a wait's cost.
POLL = 0.05


def shows(locator: tuple[str, str], text: str) -> Any:
    """A wait condition: the element, found afresh each look, holds this text. While the page is
    being replaced the element may belong to the old one, and Chromium may then answer that the
    node no longer belongs to the document (not as a stale element, which selenium's own
    condition forgives): that is a look to take again, not a failure."""
    from selenium.common.exceptions import WebDriverException

    def condition(driver: Any) -> bool:
        try:
            return text in driver.find_element(*locator).text
        except WebDriverException:
            return False

    return condition


def unavailable(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{problem}: CI must provide the browser ({INSTALL_HINT}; see .ci/run)")
    pytest.skip(f"{problem}; to run this test: {INSTALL_HINT}")


def chromium(
    profile: Path,
    *,
    width: int = 412,
    height: int = 915,
    capabilities: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """A driver for a phone-sized window (mobile first) unless told otherwise, quit afterwards."""
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
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    # A driver path given explicitly means Selenium Manager is never run (it would download).
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, folder: str, name: str) -> Path:
    """The whole page in one picture, for a person to look at when a layout changes."""
    target = ARTIFACTS / folder
    target.mkdir(parents=True, exist_ok=True)
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 140, 6000))
    path = target / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
