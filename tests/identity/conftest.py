"""The app sending to a fake Graph API (tests.fake_graph), and WhatsApp's side of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.fake_graph import FakeGraph
from tests.identity.whatsapp import PHONE_NUMBER_ID, TOKEN, WhatsApp


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(tokens={TOKEN}) as server:
        yield server


@pytest.fixture
def app_config(app_config: dict[str, str], fake: FakeGraph) -> dict[str, str]:
    """The suite's configuration, with the Graph API at the fake server."""
    return {
        **app_config,
        "WHATSAPP_ACCESS_TOKEN": TOKEN,
        "WHATSAPP_API_URL": fake.base_url,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "SEND_RATE_PER_SECOND": "1000",
    }


@pytest.fixture
def whatsapp(app: Flask, fake: FakeGraph) -> WhatsApp:
    return WhatsApp(app, fake)
