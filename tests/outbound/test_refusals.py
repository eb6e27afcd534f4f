"""Meta's refusals reported later, by a `failed` status webhook, rather than by the send itself:
131050 withdraws marketing (C13) and 131049 holds it for a day, as when the send answers them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.dev import simulate
from storage.consents import current_consents, ledger_of
from storage.db import session_scope
from storage.models import Contact
from storage.statuses import record_status
from storage.types import utcnow
from tests.conftest import MetaWebhook
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    PHONE_NUMBER_ID,
    MakeDispatcher,
    Queued,
    decide,
    messages,
    queue_texts,
)


def sent_offer(engine: Engine, make_dispatcher: MakeDispatcher) -> tuple[Queued, str]:
    """An offer to a contact who granted offers and orders, accepted by Meta; and its wamid."""
    [offer] = queue_texts(engine, 1, category="offers")
    for category in ("offers", "orders"):
        decide(engine, offer.contact_id, category, granted=True, source="whatsapp")
    make_dispatcher().drain()
    message = messages(engine, [offer])[offer.message_id]
    assert message.status == "sent" and message.wamid
    return offer, message.wamid


def reported_at() -> datetime:
    """When Meta says the send failed: a moment after the consent was given, to the second."""
    return utcnow().replace(microsecond=0) + timedelta(seconds=1)


def failed_status(wamid: str, to: str, code: int, at: datetime) -> bytes:
    return simulate.status_body(
        wamid=wamid,
        status="failed",
        recipient_id=to,
        errors=[code],
        timestamp=at,
        phone_number_id=PHONE_NUMBER_ID,
    )


def test_c13_a_failed_status_with_131050_withdraws_every_marketing_category_once(
    engine: Engine, make_dispatcher: MakeDispatcher, meta: MetaWebhook
) -> None:
    offer, wamid = sent_offer(engine, make_dispatcher)
    at = reported_at()
    body = failed_status(wamid, offer.to, 131050, at)
    for _ in range(2):  # Meta's redelivery changes nothing more
        assert meta.post(body).status_code == 200

    with Session(engine) as session:
        consents = current_consents(session, contact_id=offer.contact_id)
        ledger = ledger_of(session, contact_id=offer.contact_id)
    assert (consents["offers"].granted, consents["offers"].source) == (False, "meta")
    assert consents["orders"].granted  # not a marketing category
    withdrawals = [row for row in ledger if not row.granted]
    assert len(withdrawals) == 1
    assert withdrawals[0].evidence == {
        "error_code": "131050",
        "message_id": offer.message_id,
        "wamid": wamid,
    }
    assert withdrawals[0].occurred_at == at
    message = messages(engine, [offer])[offer.message_id]
    assert (message.status, message.error_code) == ("failed", 131050)


def test_a_failed_status_with_131049_holds_marketing_for_24_hours_from_metas_time(
    engine: Engine, make_dispatcher: MakeDispatcher, meta: MetaWebhook
) -> None:
    offer, wamid = sent_offer(engine, make_dispatcher)
    at = reported_at()
    assert meta.post(failed_status(wamid, offer.to, 131049, at)).status_code == 200

    with Session(engine) as session:
        contact = session.get(Contact, offer.contact_id)
        assert contact is not None
        assert contact.marketing_held_until == at + timedelta(hours=24)
        assert current_consents(session, contact_id=offer.contact_id)["offers"].granted


def test_a_failed_131050_status_that_arrives_before_the_wamid_is_stored_still_withdraws(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    [offer] = queue_texts(engine, 1, category="offers")
    decide(engine, offer.contact_id, "offers", granted=True, source="whatsapp")
    with session_scope(engine) as session:  # the webhook beat the dispatcher's commit
        record_status(
            session,
            wamid=fake.wamid(1),
            status="failed",
            meta_timestamp=reported_at(),
            phone_number_id=PHONE_NUMBER_ID,
            recipient_id=offer.to,
            error_code=131050,
            error_title="User has stopped marketing messages",
            raw=None,
        )

    make_dispatcher().drain()

    with Session(engine) as session:
        offers = current_consents(session, contact_id=offer.contact_id)["offers"]
    assert (offers.granted, offers.source) == (False, "meta")


def test_c13_a_131050_moves_the_dialogue_like_metas_other_marketing_opt_outs(
    app, engine: Engine, make_dispatcher: MakeDispatcher, meta: MetaWebhook
) -> None:
    """Offers was all they had granted: after 131050 the dialogue no longer has them subscribed,
    as after the "Stop promotions" button or the preference webhook."""
    from sqlmodel import select

    from bot.dev.chat import ChatSession
    from storage.models import DialogueRow

    customer = ChatSession(app, wa_id="447700900777")
    customer.say("hello")
    customer.press(2)  # let me choose
    customer.press(2)  # orders: no
    customer.press(1)  # offers: yes
    with Session(engine) as session:
        contact = session.exec(select(Contact).where(Contact.wa_id == "447700900777")).one()
        assert session.get(DialogueRow, contact.id).stage == "subscribed"
        contact_id = contact.id
    [offer] = queue_texts(engine, 1, recipients=["447700900777"], category="offers")
    make_dispatcher().drain()
    wamid = messages(engine, [offer])[offer.message_id].wamid
    assert wamid

    assert meta.post(failed_status(wamid, "447700900777", 131050, reported_at())).status_code == 200

    with Session(engine) as session:
        assert session.get(DialogueRow, contact_id).stage == "declined"
        assert not current_consents(session, contact_id=contact_id)["offers"].granted
