"""Entry points (C28): a wa.me link and its QR code carry a source tag in the prefilled text; the
conversation they open is asked as usual, and its grants record the tag (C02, C03)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.dev.chat import ChatSession
from storage.models import ConsentEvent
from tests.conftest import ROOT

NUMBER = "15550783881"  # [company] whatsapp_number of the shipped optin.toml
CUSTOMER = "971501234567"


def test_c28_the_link_opens_a_chat_with_the_tagged_text(client):
    response = client.get("/optin/link?source=poster-42")
    assert response.status_code == 200
    url, text = response.json["url"], response.json["text"]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "wa.me", f"/{NUMBER}")
    assert parse_qs(parts.query) == {"text": [text]}
    assert text == "Hello Nimbus Bakery! (ref: poster-42)"


def test_the_link_speaks_arabic_when_asked(client):
    text = client.get("/optin/link?source=poster-42&lang=ar").json["text"]
    assert text.startswith("مرحبًا Nimbus Bakery") and text.endswith("(ref: poster-42)")


@pytest.mark.parametrize("query", ["source=no%20spaces", "source=-x", "lang=fr"])
def test_a_bad_tag_or_language_is_422(client, query):
    response = client.get(f"/optin/link?{query}")
    assert response.status_code == 422
    assert set(response.json) == {"error", "message"}
    assert client.get(f"/optin/qr.svg?{query}").status_code == 422


def test_without_the_companys_number_there_is_no_link(make_app, tmp_path):
    text = (ROOT / "optin.toml").read_text(encoding="utf-8")
    path = tmp_path / "no-number.toml"
    path.write_text(re.sub(r"(?m)^whatsapp_number = .*\n", "", text), encoding="utf-8")
    client = make_app(OPTIN_CONFIG=str(path)).test_client()
    assert client.get("/optin/link").status_code == 404
    assert client.get("/optin/qr.svg").json["error"] == "not_configured"


def rasterise(svg: str, pixels_per_module: int = 4) -> tuple[memoryview, int]:
    """segno's SVG as a grey image: its one path draws each dark run as a horizontal line."""
    size = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    scale = int(re.search(r"scale\((\d+)\)", svg).group(1))  # type: ignore[union-attr]
    modules = size // scale
    dark = [[False] * modules for _ in range(modules)]
    path = re.search(r' d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHhVvZz])\s*(-?[\d.]+)?\s*(-?[\d.]+)?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        elif command == "h":
            for column in range(int(x), int(x + float(a))):
                dark[int(y)][column] = True
            x += float(a)
    side = modules * pixels_per_module
    image = bytes(
        0 if dark[row // pixels_per_module][column // pixels_per_module] else 255
        for row in range(side)
        for column in range(side)
    )
    return memoryview(image).cast("B", shape=[side, side]), side


def test_c28_the_qr_code_decodes_to_the_link(client):
    zxingcpp = pytest.importorskip("zxingcpp")
    link = client.get("/optin/link?source=receipt-3").json["url"]
    response = client.get("/optin/qr.svg?source=receipt-3")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    image, _ = rasterise(response.get_data(as_text=True))
    [found] = zxingcpp.read_barcodes(image)
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert found.text == link


def test_c02_a_chat_opened_from_the_link_is_asked_and_its_grant_records_the_tag(app, client):
    text = client.get("/optin/link?source=poster-42").json["text"]
    chat = ChatSession(app, wa_id=CUSTOMER, name="Layla")
    [prompt] = chat.say(text)
    assert "Would you like to receive them?" in prompt.payload["interactive"]["body"]["text"]
    events = client.get(
        f"/api/v1/contacts/{CUSTOMER}/consent-events",
        headers={"Authorization": "Bearer test-api-token"},
    ).json["events"]
    assert events == []  # the greeting granted nothing
    chat.say("1")  # Yes, all
    events = client.get(
        f"/api/v1/contacts/{CUSTOMER}/consent-events",
        headers={"Authorization": "Bearer test-api-token"},
    ).json["events"]
    assert [(e["category"], e["source"]) for e in events] == [
        ("orders", "whatsapp"),
        ("offers", "whatsapp"),
    ]
    assert {e["evidence"]["entry_point"] for e in events} == {"poster-42"}


def test_c03_the_linked_text_from_an_ad_is_still_not_consent(app, client, engine):
    from sqlmodel import Session, select

    text = client.get("/optin/link?source=poster-42").json["text"]
    chat = ChatSession(app, wa_id=CUSTOMER, name="Layla")
    [prompt] = chat.say(text, from_ad=True)
    assert prompt.payload["type"] == "interactive"
    with Session(engine) as session:
        assert session.exec(select(ConsentEvent)).all() == []
