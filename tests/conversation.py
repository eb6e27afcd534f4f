"""A customer's conversation as the business API and the console transport report it: what the
end-to-end tests read and assert on."""

from __future__ import annotations

from bot.dev.chat import ChatSession
from tests.conftest import Api

WA_ID = "16505551234"  # the number in the recorded fixtures


def consents(api: Api, wa_id: str = WA_ID) -> dict[str, bool]:
    response = api.get(f"/contacts/{wa_id}")
    assert response.status_code == 200, response.json
    return {k: v["granted"] for k, v in response.json["consents"].items()}


def ledger(api: Api, wa_id: str = WA_ID) -> list[dict]:
    return api.get(f"/contacts/{wa_id}/consent-events").json["events"]


def body_of(messages) -> str:
    return "\n".join(
        m.payload.get("text", {}).get("body", "")
        or m.payload.get("interactive", {}).get("body", {}).get("text", "")
        for m in messages
    )


def button_ids(message) -> list[str]:
    buttons = message.payload.get("interactive", {}).get("action", {}).get("buttons", [])
    return [b["reply"]["id"] for b in buttons]


def button_titles(message) -> list[str]:
    buttons = message.payload.get("interactive", {}).get("action", {}).get("buttons", [])
    return [b["reply"]["title"] for b in buttons]


def shown_text(message) -> str:
    """What the customer saw: the body, then each button's title in brackets, one per line."""
    body = body_of([message])
    return "\n".join([body, *(f"[{title}]" for title in button_titles(message))])


PROMPT_BUTTONS = ["optin:yes", "optin:choose", "optin:no"]


def opt_in_to_everything(customer: ChatSession, api: Api) -> None:
    """Tap "Yes, all" on the prompt; the one reply is the confirmation and both are granted."""
    customer.say("hello")
    replies = customer.press(1)  # Yes, all
    assert len(replies) == 1
    assert replies[0].payload["type"] == "text"
    confirmation = body_of(replies)
    assert "Nimbus Bakery" in confirmation
    assert "Order updates" in confirmation and "Offers" in confirmation
    assert consents(api, customer.wa_id) == {"orders": True, "offers": True}
