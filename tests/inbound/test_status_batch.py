"""A body's statuses applied together (storage.statuses): each kept once, each message moved
forward only, exactly as applying them one by one would leave it, on the suite's backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select, update

from bot.dev import simulate
from flows.policy import ConsentChange, ConsentSource
from storage.consents import current_consents, record
from storage.db import session_scope
from storage.models import Contact, Message, StatusEvent
from storage.outbox import enqueue_message
from storage.statuses import StatusRow, Stored, forward_steps, record_statuses
from tests.conftest import MetaWebhook

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def row(wamid: str, status: str, seconds: int = 0, code: int | None = None) -> StatusRow:
    return StatusRow(
        wamid=wamid,
        status=status,
        meta_timestamp=AT + timedelta(seconds=seconds),
        phone_number_id="1",
        recipient_id="447700900001",
        recipient_user_id=None,
        recipient_participant_id=None,
        error_code=code,
        error_title="refused" if code else None,
        raw=None,
    )


def stored(status: str = "sent", code: int | None = None) -> Stored:
    return Stored("m1", 7, status, code, "old" if code else None)


# --- the steps, pure ---------------------------------------------------------------------------


def test_a_later_stage_reported_first_is_not_moved_back_by_an_earlier_one() -> None:
    steps = forward_steps({"w": stored()}, [row("w", "read", 5), row("w", "delivered", 3)])
    assert [(s.status, s.occurred_at) for s in steps] == [("read", AT + timedelta(seconds=5))]


def test_each_stage_in_body_order_is_a_step_and_the_error_stays_with_the_failure() -> None:
    steps = forward_steps(
        {"w": stored("queued")},
        [row("w", "sent"), row("w", "failed", 1, code=131050), row("w", "read", 2)],
    )
    assert [(s.status, s.error_code) for s in steps] == [
        ("sent", None),
        ("failed", 131050),
        ("read", 131050),  # a later stage without an error keeps the error it had
    ]


def test_a_status_of_a_message_not_ours_moves_nothing() -> None:
    assert forward_steps({"w": stored()}, [row("other", "read")]) == []


def test_a_status_no_later_than_the_stored_one_is_no_step() -> None:
    assert forward_steps({"w": stored("read")}, [row("w", "delivered"), row("w", "read")]) == []


# --- on the database ---------------------------------------------------------------------------


def sent_messages(engine: Engine, count: int) -> list[tuple[str, int]]:
    """`count` messages queued and given wamids as the dispatcher does; (wamid, contact id)."""
    sent = []
    with session_scope(engine) as session:
        contact = Contact(wa_id="447700900001", created_at=AT)
        session.add(contact)
        session.flush()
        assert contact.id is not None
        for n in range(count):
            message_id = enqueue_message(
                session,
                contact_id=contact.id,
                phone_number_id="1",
                payload={"to": contact.wa_id},
                type="text",
                text=f"n{n}",
            )
            wamid = f"wamid.OUT{n:04d}"
            session.exec(
                update(Message).where(Message.id == message_id).values(wamid=wamid, status="sent")
            )
            sent.append((wamid, contact.id))
    return sent


def statuses_of(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.exec(select(Message.wamid, Message.status).where(Message.direction == "out"))
        return {wamid: status for wamid, status in rows if wamid}


def test_a_hundred_statuses_in_one_body_each_move_their_message_once(
    engine: Engine, meta: MetaWebhook
) -> None:
    sent = sent_messages(engine, 100)
    body = simulate.batch_body(
        *(
            simulate.status_body(wamid=wamid, status="delivered", recipient_id="447700900001")
            for wamid, _ in sent
        )
    )
    first = meta.post(body)
    again = meta.post(body)

    assert (first.json["statuses"], first.json["duplicates"]) == (100, 0)
    assert (again.json["statuses"], again.json["duplicates"]) == (0, 100)
    assert set(statuses_of(engine).values()) == {"delivered"}
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(StatusEvent)).one() == 100


def test_read_before_delivered_in_one_body_leaves_read(engine: Engine, meta: MetaWebhook) -> None:
    [(wamid, _)] = sent_messages(engine, 1)
    body = simulate.batch_body(
        simulate.status_body(wamid=wamid, status="read", recipient_id="447700900001"),
        simulate.status_body(wamid=wamid, status="delivered", recipient_id="447700900001"),
    )
    assert meta.post(body).json["statuses"] == 2
    assert statuses_of(engine) == {wamid: "read"}


def test_c13_a_failed_131050_among_a_batch_withdraws_marketing(
    engine: Engine, meta: MetaWebhook
) -> None:
    sent = sent_messages(engine, 3)
    contact_id = sent[0][1]
    with session_scope(engine) as session:
        grant = ConsentChange(
            category="offers",
            granted=True,
            source=ConsentSource.WEB,
            text="Offers?",
            text_version="v1",
            occurred_at=AT,
        )
        record(session, contact_id=contact_id, changes=[grant])
    body = simulate.batch_body(
        simulate.status_body(wamid=sent[0][0], status="delivered", recipient_id="447700900001"),
        simulate.status_body(
            wamid=sent[1][0], status="failed", recipient_id="447700900001", errors=[131050]
        ),
        simulate.status_body(wamid=sent[2][0], status="read", recipient_id="447700900001"),
    )
    assert meta.post(body).json["statuses"] == 3

    with Session(engine) as session:
        offers = current_consents(session, contact_id=contact_id)["offers"]
        failed = session.exec(select(Message).where(Message.wamid == sent[1][0])).one()
    assert (offers.granted, offers.source) == (False, "meta")
    assert (failed.status, failed.error_code) == ("failed", 131050)


def test_the_set_path_leaves_what_the_one_by_one_path_leaves(engine: Engine) -> None:
    sent = sent_messages(engine, 2)
    rows = [
        row(sent[0][0], "delivered", 1),
        row(sent[0][0], "sent", 0),
        row(sent[1][0], "failed", 2, code=131026),
        row(sent[0][0], "delivered", 1),  # the same event twice in a body counts once
        row("wamid.NOT-OURS", "read", 3),
    ]
    with session_scope(engine) as session:
        applied = record_statuses(session, rows)
    assert applied.new == (True, True, True, False, True)
    assert [(m.wamid, m.status) for m in applied.moved] == [
        (sent[0][0], "delivered"),
        (sent[1][0], "failed"),
    ]
    with Session(engine) as session:
        messages = {
            m.wamid: m for m in session.exec(select(Message).where(col(Message.direction) == "out"))
        }
    assert (messages[sent[0][0]].status, messages[sent[0][0]].status_at) == (
        "delivered",
        AT + timedelta(seconds=1),
    )
    assert (messages[sent[1][0]].error_code, messages[sent[1][0]].error_title) == (
        131026,
        "refused",
    )


def test_single_statuses_move_forward_only_and_keep_the_error_they_brought(
    engine: Engine,
) -> None:
    [(wamid, _)] = sent_messages(engine, 1)
    for status, seconds, code in (("failed", 1, 131026), ("delivered", 2, None), ("read", 3, None)):
        with session_scope(engine) as session:
            applied = record_statuses(session, [row(wamid, status, seconds, code=code)])
        assert applied.new == (True,)
    with Session(engine) as session:
        message = session.exec(select(Message).where(Message.wamid == wamid)).one()
    assert (message.status, message.status_at) == ("read", AT + timedelta(seconds=3))
    assert (message.error_code, message.error_title) == (131026, "refused")
