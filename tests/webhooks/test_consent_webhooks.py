"""C29: the business's own systems hear every consent change through a signed webhook, at least
once and in order per contact, retried with backoff until their receiver answers 2xx."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import datetime

import pytest
from flask import Flask
from sqlmodel import Session, select

from bot import create_app
from bot.dev.chat import ChatSession
from bot.webhooks.signing import verify
from bot.wiring.services import services
from bot.wiring.settings import Settings, SettingsError
from storage.models import ConsentWebhook
from tests.api.conftest import OTHER_WA_ID as OTHER
from tests.api.conftest import PHONE_NUMBER_ID, WA_ID, grant
from tests.clock import ManualClock
from tests.conftest import Api
from tests.receiver import Delivery, Receiver
from tests.wiring.test_settings import BASE  # production settings that start

SECRET = "consent-webhook-secret-for-tests"
CUSTOMER = "971501234567"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def hooked_app(app_config: dict[str, str], receiver: Receiver) -> Iterator[Flask]:
    made = create_app(
        {
            **app_config,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "CONSENT_WEBHOOK_URL": receiver.url,
            "CONSENT_WEBHOOK_SECRET": SECRET,
        }
    )
    yield made
    services(made).engine.dispose()


def sender(app: Flask, clock: ManualClock | None = None, **overrides: object):  # type: ignore[no-untyped-def]
    """A sender on a clock the test moves: a retry comes due when the test says, not later."""
    options = {"jitter": lambda: 1.0, "clock": (clock or ManualClock()).utcnow, **overrides}
    return services(app).webhook_sender(**options)


def deliver(app: Flask, receiver: Receiver, count: int, rounds: int = 20) -> list[Delivery]:
    """Run the sender until the receiver has accepted `count` bodies, bringing every retry due
    whenever nothing else is."""
    clock = ManualClock()
    webhooks = sender(app, clock)
    for _ in range(rounds):
        if len(receiver.accepted()) >= count:
            break
        if not webhooks.run_once():
            clock.advance(webhooks.longest_retry)
    return receiver.accepted()


def waiting(app: Flask) -> list[ConsentWebhook]:
    with Session(services(app).engine) as session:
        return list(session.exec(select(ConsentWebhook).order_by(ConsentWebhook.id)))


def assert_signed(delivery: Delivery) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["x-signature-256"] == expected
    assert verify(SECRET, delivery.body, delivery.headers["x-signature-256"])
    assert delivery.headers["content-type"] == "application/json"


def test_c29_a_grant_and_a_stop_arrive_signed_in_order(hooked_app, receiver):
    chat = ChatSession(hooked_app, wa_id=CUSTOMER, name="Layla")
    chat.say("hello")
    chat.say("1")  # Yes, all
    chat.say("STOP")
    bodies = [d.json for d in deliver(hooked_app, receiver, 4)]
    assert [(b["type"], b["category"]) for b in bodies] == [
        ("consent.granted", "orders"),
        ("consent.granted", "offers"),
        ("consent.withdrawn", "orders"),
        ("consent.withdrawn", "offers"),
    ]
    for delivery in receiver.accepted():
        assert_signed(delivery)
    first = bodies[0]
    assert set(first) == {"id", "type", "occurred_at", "contact", "category", "source"}
    assert first["contact"] == {"wa_id": CUSTOMER, "user_id": None}
    assert first["source"] == "whatsapp"
    assert datetime.fromisoformat(first["occurred_at"]).tzinfo is not None
    assert len({b["id"] for b in bodies}) == 4
    assert waiting(hooked_app) == []  # delivered rows leave the outbox


def test_c29_a_webhook_is_retried_after_the_receiver_answers_500_twice(hooked_app, receiver):
    receiver.failures = 2
    grant(Api(hooked_app.test_client()), categories=["orders"], source="paper")
    [delivered] = deliver(hooked_app, receiver, 1)
    attempts = receiver.received
    assert [d.status for d in attempts] == [500, 500, 204]
    # The same body, signed the same way, every time: the receiver drops repeats by its id.
    assert len({d.body for d in attempts}) == 1
    for attempt in attempts:
        assert_signed(attempt)
    assert delivered.json["type"] == "consent.granted"
    assert delivered.json["source"] == "paper"
    assert delivered.json["contact"]["wa_id"] == WA_ID


def test_c29_a_later_change_waits_for_the_earlier_one_of_the_same_contact(
    hooked_app, receiver, api
):
    api = Api(hooked_app.test_client())
    receiver.failures = 1
    grant(api, categories=["orders"], source="paper")
    grant(api, categories=["orders"], source="paper", granted=False)
    grant(api, OTHER, categories=["orders"], source="sms")
    clock = ManualClock()
    webhooks = sender(hooked_app, clock, concurrency=1)  # one at a time: the first one fails
    webhooks.run_once()  # the first contact's grant fails; the other contact's goes
    assert [(d.status, d.json["contact"]["wa_id"]) for d in receiver.received] == [
        (500, WA_ID),
        (204, OTHER),
    ]
    assert webhooks.run_once() == 0  # the grant's retry is not due; the withdrawal waits behind
    clock.advance(webhooks.first_retry)
    assert webhooks.run_once() == 1  # the grant's retry, alone: the withdrawal waits for it
    assert [(d.json["type"], d.status) for d in receiver.received[2:]] == [("consent.granted", 204)]
    bodies = [d.json for d in deliver(hooked_app, receiver, 3)]
    assert [(b["contact"]["wa_id"], b["type"]) for b in bodies] == [
        (OTHER, "consent.granted"),
        (WA_ID, "consent.granted"),
        (WA_ID, "consent.withdrawn"),
    ]


def test_c29_an_erasure_is_reported_after_the_contacts_changes(hooked_app, receiver):
    api = Api(hooked_app.test_client())
    grant(api, categories=["orders"], source="email")
    assert api.delete(f"/contacts/{WA_ID}").status_code == 204
    bodies = [d.json for d in deliver(hooked_app, receiver, 2)]
    assert [b["type"] for b in bodies] == ["consent.granted", "contact.erased"]
    erased = bodies[1]
    assert erased["contact"] == {"wa_id": WA_ID, "user_id": None}
    assert erased["category"] is None
    assert erased["source"] == "api"


def test_c29_unconfirmed_consent_is_heard_of_when_the_person_confirms(
    app_config, receiver, double_opt_in_config
):
    from bot.dev import simulate
    from tests.conftest import MetaWebhook

    app = create_app(
        {
            **app_config,
            "OPTIN_CONFIG": double_opt_in_config,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "CONSENT_WEBHOOK_URL": receiver.url,
            "CONSENT_WEBHOOK_SECRET": SECRET,
        }
    )
    try:
        grant(Api(app.test_client()), categories=["offers"], source="web")
        assert waiting(app) == []  # awaiting the tap: not consent yet
        body = simulate.template_button_body(wa_id=WA_ID, payload="doi:yes", text="Yes")
        assert MetaWebhook(app.test_client()).post(body).status_code == 200
        [delivery] = deliver(app, receiver, 1)
        assert (delivery.json["type"], delivery.json["category"]) == ("consent.granted", "offers")
        assert delivery.json["source"] == "whatsapp"
    finally:
        services(app).engine.dispose()


def test_without_a_receiver_nothing_is_queued(app, api):
    grant(api, categories=["orders"], source="paper")
    assert waiting(app) == []
    assert services(app).webhook_sender() is None


def test_the_backlog_and_failures_are_in_the_metrics(app_config, receiver):
    app = create_app(
        {
            **app_config,
            "CONSENT_WEBHOOK_URL": receiver.url,
            "CONSENT_WEBHOOK_SECRET": SECRET,
            "METRICS_TOKEN": "metrics-token",
        }
    )
    try:
        client = app.test_client()
        grant(Api(client), categories=["orders", "offers"], source="ivr")
        receiver.failures = 1
        sender(app).run_once()

        def metric(name: str) -> float:
            page = client.get("/metrics", headers={"Authorization": "Bearer metrics-token"})
            line = next(x for x in page.get_data(as_text=True).splitlines() if x.startswith(name))
            return float(line.split()[-1])

        assert metric("optin_consent_webhooks_waiting ") == 2  # the second waits behind
        assert metric("optin_consent_webhooks_failing ") == 1
        assert metric("optin_consent_webhooks_failed_attempts ") == 1
        assert metric("optin_consent_webhooks_oldest_seconds ") >= 0
        deliver(app, receiver, 2)
        assert metric("optin_consent_webhooks_waiting ") == 0
        assert metric("optin_consent_webhooks_failing ") == 0
    finally:
        services(app).engine.dispose()


@pytest.mark.parametrize(
    "env",
    [
        {"CONSENT_WEBHOOK_URL": "https://crm.example/hook"},
        {"CONSENT_WEBHOOK_URL": "https://crm.example/hook", "CONSENT_WEBHOOK_SECRET": "short"},
        {"CONSENT_WEBHOOK_URL": "crm.example/hook", "CONSENT_WEBHOOK_SECRET": SECRET},
    ],
)
def test_a_receiver_without_a_usable_url_or_secret_stops_start_up(env):
    with pytest.raises(SettingsError, match="CONSENT_WEBHOOK"):
        Settings.from_env({**BASE, **env})


def test_the_secret_is_not_in_the_settings_repr():
    settings = Settings.from_env(
        {**BASE, "CONSENT_WEBHOOK_URL": "https://crm.example/h", "CONSENT_WEBHOOK_SECRET": SECRET}
    )
    assert SECRET not in repr(settings)
