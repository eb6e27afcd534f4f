"""The support inbox: webhook bodies that could not be read, shown to staff and resolved."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.conftest import MetaWebhook
from tests.console.conftest import csrf_from

ROW = re.compile(r'<tr class="inbox-row">(.*?)</tr>', re.S)
BROKEN = b'{"object": "whatsapp_business_account", "entry": [{"note": "<script>alert(1)</script>"'


def inbox(client: FlaskClient, query: str = "") -> str:
    response = client.get(f"/console/inbox{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_an_unreadable_body_is_shown_escaped_with_its_problem(
    staff_client: FlaskClient, meta: MetaWebhook
) -> None:
    assert meta.post(BROKEN).status_code == 200  # Meta is answered; the body is kept

    page = inbox(staff_client)

    [row] = ROW.findall(page)
    assert "<script>" not in row  # customer-controlled bytes are text, never markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row
    assert f"{len(BROKEN)} bytes" in row
    assert "1 open, 0 resolved" in page


def test_a_readable_json_event_is_indented_for_reading(
    staff_client: FlaskClient, meta: MetaWebhook
) -> None:
    # A well-formed body whose one status item lacks its id: that item alone is kept.
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",'
        b'"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1",'
        b'"phone_number_id":"106540352242922"},"statuses":[{"status":"sent","timestamp":"1"}]}}]}]}'
    )
    assert meta.post(body).status_code == 200

    [row] = ROW.findall(inbox(staff_client))
    assert "{\n  &#34;status&#34;: &#34;sent&#34;,\n  &#34;timestamp&#34;: &#34;1&#34;\n}" in row


def test_resolving_moves_an_item_out_of_the_open_list(
    staff_client: FlaskClient, meta: MetaWebhook
) -> None:
    assert meta.post(BROKEN).status_code == 200
    page = inbox(staff_client)
    action = re.search(r'action="(/console/inbox/\d+/resolve)"', page)
    assert action

    forged = staff_client.post(action.group(1), data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert len(ROW.findall(inbox(staff_client))) == 1

    done = staff_client.post(
        action.group(1), data={"csrf_token": csrf_from(staff_client, "/console/inbox")}
    )
    assert done.status_code == 302 and done.headers["Location"] == "/console/inbox"
    assert ROW.findall(inbox(staff_client)) == []
    resolved = inbox(staff_client, "?resolved=1")
    assert len(ROW.findall(resolved)) == 1 and "0 open, 1 resolved" in resolved


def test_the_inbox_needs_a_signed_in_staff_member(client: FlaskClient) -> None:
    response = client.get("/console/inbox")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login")


def test_a_kept_body_nested_too_deep_to_indent_is_shown_as_it_came(
    staff_client: FlaskClient, meta: MetaWebhook
) -> None:
    deep = b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert meta.post(deep).status_code == 200  # kept for support, whatever its shape

    [row] = ROW.findall(inbox(staff_client))

    assert "[[[[[[[[" in row
