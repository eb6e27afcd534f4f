"""A body holding several messages from each of several customers leaves exactly what the same
messages leave posted one body each: the same ledger rows, consents, replies and dialogue.

The body is stored in rounds (a sender's n-th message in round n) with each round's senders
looked up and their dialogues read together; this proves the rounds change nothing a customer
or a regulator could see, and that a contact reached by two identifiers in one round is read
back after the round wrote about it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.dev import simulate
from storage.models import Consent, ConsentEvent, Contact, DialogueRow, Message
from tests.conftest import MetaWebhook, fixture_bytes

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
# Typed answers only: a tap must cite a prompt Meta delivered, which a body posted at once has
# not had yet.
SCRIPTS = {
    "01": ["hello", "yes", "stop", "start"],
    "02": ["hi", "help", "yes", "no more offers please"],
    "03": ["STOP"],
    "04": ["hello", "YES", "STOP ALL", "hello", "yes"],
    "05": ["مرحبا", "نعم", "توقف"],
    "06": ["hello", "choose", "orders", "unstop"],
}
# One person, in one body: by number, by number and user id, then by the user id alone.
PAIRED = [("hello", True, False), ("yes", True, True), ("stop", False, True)]


def _bodies(prefix: str) -> list[bytes]:
    """Each script's messages, a second apart, interleaved across customers as Meta would."""
    bodies = []
    for step in range(max(len(s) for s in SCRIPTS.values())):
        for customer, script in SCRIPTS.items():
            if step < len(script):
                bodies.append(
                    simulate.text_body(
                        wa_id=f"1555{prefix}{customer}0000",
                        text=script[step],
                        timestamp=START + timedelta(seconds=step),
                    )
                )
    for step, (text, by_number, by_user_id) in enumerate(PAIRED):
        bodies.append(
            simulate.text_body(
                wa_id=f"1555{prefix}990000" if by_number else None,
                user_id=f"US.{prefix}99" if by_user_id else None,
                text=text,
                timestamp=START + timedelta(seconds=step),
            )
        )
    return bodies


def _seen(engine: Engine, prefix: str) -> dict[str, object]:
    """Everything about the prefix's customers a regulator or the customer could see, keyed by
    customer (not by id or time, which differ between the two runs)."""
    seen: dict[str, object] = {}
    with Session(engine) as session:
        contacts = session.exec(
            select(Contact).where(col(Contact.wa_id).startswith(f"1555{prefix}"))
        ).all()
        for contact in contacts:
            customer = (contact.wa_id or "")[5:7]
            ledger = session.exec(
                select(ConsentEvent)
                .where(ConsentEvent.contact_id == contact.id)
                .order_by(col(ConsentEvent.id))
            ).all()
            replies = session.exec(
                select(Message)
                .where(Message.contact_id == contact.id, Message.direction == "out")
                .order_by(col(Message.created_at), col(Message.id))
            ).all()
            consents = session.exec(select(Consent).where(Consent.contact_id == contact.id)).all()
            dialogue = session.get(DialogueRow, contact.id)
            seen[customer] = {
                "user_id": contact.user_id and contact.user_id.replace(prefix, ""),
                "language": contact.language,
                "ledger": [(e.category, e.granted, e.source, e.text) for e in ledger],
                "replies": [(m.purpose, m.text, m.status) for m in replies],
                "consents": sorted((c.category, c.granted, c.confirmed) for c in consents),
                "stage": dialogue.stage if dialogue else None,
            }
    return seen


def test_a_body_of_many_messages_per_customer_leaves_what_one_body_each_leaves(
    meta: MetaWebhook, engine: Engine
) -> None:
    together = _bodies("1")
    answer = meta.post(simulate.batch_body(*together))
    assert answer.status_code == 200
    assert answer.get_json()["messages"] == len(together)

    for body in _bodies("2"):
        assert meta.post(body).status_code == 200

    at_once, one_by_one = _seen(engine, "1"), _seen(engine, "2")
    assert set(at_once) == {*SCRIPTS, "99"}  # the user id alone reached the same person
    assert at_once == one_by_one
    # Not vacuous: the scripts reached consent, a stop and a paired user id.
    assert at_once["01"]["ledger"] and at_once["99"]["user_id"] == "US.99"  # type: ignore[index]
    assert any(not granted for _, granted, _, _ in at_once["04"]["ledger"])  # type: ignore[index]


def _number_change(prefix: str, at: datetime) -> bytes:
    """WhatsApp's notice that the prefix's customer changed number (and user id)."""
    recorded = fixture_bytes("system_user_changed_number.json").decode()
    for old, new in (
        ("16505551234", f"1555{prefix}880000"),
        ("16505559999", f"1555{prefix}770000"),
        ("US.1410018717833190", f"US.{prefix}88"),
        ("US.2020018717833190", f"US.{prefix}77"),
        ("wamid.SYS0001", f"wamid.SYS{prefix}"),
        ("1764488400", str(int(at.timestamp()))),
    ):
        recorded = recorded.replace(old, new)
    return recorded.encode()


def _new_and_late(prefix: str, new: str, late: str) -> list[bytes]:
    """One from the new number, and one written before the change from the old number,
    delivered together: in the order a body's senders are stored (by key: the new number
    first), which is the order they are posted one by one to compare."""
    return [
        simulate.text_body(
            wa_id=f"1555{prefix}770000",
            user_id=f"US.{prefix}77",
            text=new,
            timestamp=START + timedelta(seconds=20),
        ),
        simulate.text_body(
            wa_id=f"1555{prefix}880000",
            user_id=f"US.{prefix}88",
            text=late,
            timestamp=START + timedelta(seconds=5),
        ),
    ]


@pytest.mark.parametrize(
    ("new", "late"), [("yes", "stop"), ("choose", "orders"), ("stop", "start"), ("help", "yes")]
)
def test_c27_two_numbers_of_one_person_in_one_body_act_as_posted_one_by_one(
    meta: MetaWebhook, engine: Engine, new: str, late: str
) -> None:
    """The late message reaches the person by their old number, the other by the new: two
    senders to the rounds, one contact. The new number sorts first, so the late message finds
    the person written about under identifiers it does not carry, and reads them back."""
    for prefix in ("1", "2"):
        hello = simulate.text_body(
            wa_id=f"1555{prefix}880000", user_id=f"US.{prefix}88", text="hello", timestamp=START
        )
        assert meta.post(hello).status_code == 200
        assert meta.post(_number_change(prefix, START + timedelta(seconds=10))).status_code == 200
    answer = meta.post(simulate.batch_body(*_new_and_late("1", new, late)))
    assert answer.get_json()["messages"] == 2
    for body in _new_and_late("2", new, late):
        assert meta.post(body).status_code == 200

    at_once, one_by_one = _seen(engine, "1"), _seen(engine, "2")
    assert at_once == one_by_one
    (person,) = at_once.values()
    assert len(person["replies"]) >= 3  # type: ignore[index,arg-type]
