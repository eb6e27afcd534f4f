"""Fixtures for the pure dialogue: a catalog mirroring optin.toml, a chat driving step(), and
contacts brought to each stage of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flows.catalog import Catalog, Category, Company
from flows.dialogue import step
from flows.model import DialogueState, Inbound, InboundKind, Reply, Sent, Stage, StepResult
from flows.policy import QUESTION_PURPOSES, WITHDRAWAL_PURPOSES, ConsentChange

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BOTH = frozenset({"orders", "offers"})


def build_catalog(**company_overrides: object) -> Catalog:
    company = Company(
        name="Nimbus Bakery",
        support="help@nimbus.example",
        privacy_url="https://nimbus.example/privacy",
        languages=("en", "ar"),
    )
    return Catalog(
        company=replace(company, **company_overrides),
        categories=(
            Category(
                id="orders",
                marketing=False,
                title={"en": "Order updates", "ar": "تحديثات الطلبات"},
                description={"en": "Shipping and delivery news", "ar": "أخبار الشحن والتوصيل"},
                keywords=("orders", "order", "الطلبات"),
            ),
            Category(
                id="offers",
                marketing=True,
                title={"en": "Offers", "ar": "العروض"},
                description={
                    "en": "Discounts and new products",
                    "ar": "الخصومات والمنتجات الجديدة",
                },
                keywords=("offers", "offer", "promotions", "العروض"),
            ),
        ),
    )


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return build_catalog()


@pytest.fixture(scope="session")
def catalog_factory() -> Callable[..., Catalog]:
    return build_catalog


@pytest.fixture
def now() -> datetime:
    return NOW


class Chat:
    """One contact talking to the dialogue, with the bookkeeping the webhook would do:
    outbound wamids and when each went out, the message a button was tapped on, the last
    question sent and the last withdrawal confirmed (from the outbound log), the ledger."""

    def __init__(self, catalog: Catalog, state: DialogueState, now: datetime) -> None:
        self.catalog = catalog
        self.state = state
        self.now = now
        self.ledger: list[ConsentChange] = []
        self.sent: list[tuple[str, Reply]] = []  # (outbound wamid, reply)
        self.sent_at: dict[str, datetime] = {}  # outbound wamid → when it was queued
        self._count = 0
        self._log_clock = now
        self.last_in: Inbound | None = None

    def _wamid(self, direction: str) -> str:
        self._count += 1
        return f"wamid.{direction}.{self._count}"

    def _queued_at(self) -> datetime:
        # The server's clock moves on between two messages even when the test's does not.
        self._log_clock = max(self.now, self._log_clock + timedelta(microseconds=1))
        return self._log_clock

    def deliver(self, event: Inbound) -> StepResult:
        self.last_in = event
        result = step(self.state, event, self.catalog, self.now)
        state = result.state
        for reply in result.replies:
            wamid, queued_at = self._wamid("out"), self._queued_at()
            self.sent.append((wamid, reply))
            self.sent_at[wamid] = queued_at
            if reply.purpose in QUESTION_PURPOSES:
                sent = Sent(wamid=wamid, text_version=reply.text_version, sent_at=queued_at)
                state = replace(state, last_question=sent)
            if reply.purpose in WITHDRAWAL_PURPOSES:
                state = replace(state, withdrawn_at=queued_at)
        self.state = state
        self.ledger.extend(result.changes)
        return result

    def send(self, text: str, **fields: object) -> StepResult:
        values: dict[str, object] = {"timestamp": self.now, "text": text, **fields}
        event = Inbound(kind=InboundKind.TEXT, wamid=self._wamid("in"), **values)  # type: ignore[arg-type]
        return self.deliver(event)

    def message_with_button(self, reply_id: str) -> tuple[str, Reply]:
        return next(
            (w, r) for w, r in reversed(self.sent) if any(b.id == reply_id for b in r.buttons)
        )

    def tap(self, reply_id: str, **fields: object) -> StepResult:
        """Tap a button on the latest message showing it; fields override what the tap carries."""
        values: dict[str, object] = {"timestamp": self.now, "reply_id": reply_id}
        shown = [(w, r) for w, r in self.sent if any(b.id == reply_id for b in r.buttons)]
        if shown:
            wamid, reply = shown[-1]
            values["context_wamid"] = wamid
            values["context_text_version"] = reply.text_version
            values["context_sent_at"] = self.sent_at[wamid]
            values["text"] = next(b.title for b in reply.buttons if b.id == reply_id)
        values.update(fields)
        event = Inbound(kind=InboundKind.BUTTON, wamid=self._wamid("in"), **values)  # type: ignore[arg-type]
        return self.deliver(event)

    def media(self, kind: InboundKind = InboundKind.MEDIA) -> StepResult:
        return self.deliver(Inbound(kind=kind, wamid=self._wamid("in"), timestamp=self.now))

    def wait(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def chat(catalog: Catalog) -> Callable[..., Chat]:
    def make(
        state: DialogueState | None = None, *, catalog: Catalog = catalog, now: datetime = NOW
    ) -> Chat:
        return Chat(catalog, state or DialogueState(), now)

    return make


ChatFactory = Callable[..., Chat]


def purposes(result: StepResult) -> list[str]:
    return [r.purpose for r in result.replies]


def asked(chat: ChatFactory, language: str | None = None, **state: object) -> Chat:
    """A contact who has just been shown the consent prompt (language None: not chosen yet)."""
    c = chat(DialogueState(language=language, language_chosen=language is not None, **state))  # type: ignore[arg-type]
    c.send("Hello")
    assert c.state.stage is Stage.ASKED
    return c


def subscribed(chat: ChatFactory, language: str | None = None) -> Chat:
    c = asked(chat, language)
    c.tap("optin:yes")
    assert c.state.granted == BOTH
    return c


def stop_asked(chat: ChatFactory) -> Chat:
    """A subscribed contact whose words may have asked to stop: the one-tap question is open."""
    c = subscribed(chat)
    c.send("too many messages")
    assert c.state.stage is Stage.STOP_ASKED
    return c


def stopped(chat: ChatFactory) -> Chat:
    c = subscribed(chat)
    c.send("STOP")
    assert c.state.stage is Stage.STOPPED
    return c


def choosing(chat: ChatFactory) -> Chat:
    c = asked(chat)
    c.tap("optin:choose")
    c.tap("cat:orders:yes")  # one granted, one still to ask
    return c


def declined(chat: ChatFactory) -> Chat:
    c = asked(chat)
    c.tap("optin:no")
    return c


STAGE_SETUPS: dict[Stage, Callable[[ChatFactory], Chat]] = {
    Stage.NEW: lambda chat: chat(),
    Stage.ASKED: asked,
    Stage.CHOOSING: choosing,
    Stage.SUBSCRIBED: subscribed,
    Stage.DECLINED: declined,
    Stage.STOPPED: stopped,
    Stage.STOP_ASKED: stop_asked,
}
