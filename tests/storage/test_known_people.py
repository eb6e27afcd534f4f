"""A body's senders looked up once (storage.known_people) give the answers the per-message
queries give, and a body of first messages is stored on those answers, in one flush."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bot.dev import simulate
from storage.db import is_postgres, session_scope
from storage.identity import Identity, earlier_holder, lock_holders
from storage.known_people import KnownPeople, look_up_people
from storage.models import Contact, ErasureRecord, IdentityChange, Message, OutboxItem
from storage.suppression import ERASURE_REASON, last_erased_at, suppress, suppression_digest
from tests.conftest import MetaWebhook
from tests.storage.helpers import statements_on

KEY = b"test-suppression-key"
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _people(session: Session) -> list[Identity]:
    """Someone erased twice, someone suppressed at erasure, two holders of one person's keys,
    a number changed away, and a stranger."""
    session.add(
        ErasureRecord(
            digest=suppression_digest(KEY, "15550000001"), token_fingerprint="t", erased_at=AT
        )
    )
    later = AT + timedelta(days=2)
    session.add(
        ErasureRecord(
            digest=suppression_digest(KEY, "15550000001"), token_fingerprint="t", erased_at=later
        )
    )
    suppress(session, key=KEY, wa_id="US.2", reason=ERASURE_REASON, since=AT + timedelta(days=3))
    suppress(session, key=KEY, wa_id="15550000009", reason="complaint", since=AT)
    by_number = Contact(wa_id="15550000003")
    by_user_id = Contact(user_id="US.3")
    moved = Contact(wa_id="15550000005")
    session.add_all([by_number, by_user_id, moved])
    session.flush()
    for n, at in ((1, AT), (2, AT + timedelta(days=1))):
        session.add(
            IdentityChange(
                contact_id=moved.id,
                field="wa_id",
                previous="15550000004",
                current=f"1555000000{4 + n}",
                reason="user_changed_number",
                occurred_at=at,
            )
        )
    session.flush()
    return [
        Identity(wa_id="15550000001"),
        Identity(wa_id="15550000002", user_id="US.2"),
        Identity(wa_id="15550000003", user_id="US.3"),
        Identity(wa_id="15550000004"),
        Identity(wa_id="15550000009", parent_user_id="PUS.9"),
        Identity(wa_id="15550000010"),
    ]


def _answers_as_each_query(session: Session, known: KnownPeople, identity: Identity) -> None:
    identifiers = (identity.wa_id, identity.user_id, identity.parent_user_id)
    assert known.last_erased_at(identifiers) == last_erased_at(
        session, key=KEY, identifiers=identifiers
    ), identity
    assert [c.id for c in known.holders_of(identity)] == [
        c.id for c in lock_holders(session, identity)
    ], identity
    for at in (AT - timedelta(hours=1), AT + timedelta(hours=1), AT + timedelta(days=3)):
        assert known.earlier_holder(identity, at=at) == earlier_holder(session, identity, at=at), (
            identity,
            at,
        )


def test_c25_c27_the_body_lookup_answers_as_each_query_would(engine: Engine) -> None:
    with session_scope(engine) as session:
        identities = _people(session)
        known = look_up_people(session, key=KEY, identities=identities)
        for identity in identities:
            _answers_as_each_query(session, known, identity)
        # The cases are there to be told apart, not all None.
        assert known.last_erased_at(["15550000001"]) == AT + timedelta(days=2)
        assert known.last_erased_at(["US.2"]) == AT + timedelta(days=3)
        assert known.last_erased_at(["15550000009"]) is None  # a complaint is no erasure
        assert len(known.holders_of(identities[2])) == 2
        assert known.earlier_holder(identities[3], at=AT + timedelta(hours=1)) is not None


def test_answers_go_stale_for_whoever_the_transaction_touched(engine: Engine) -> None:
    with session_scope(engine) as session:
        known = look_up_people(session, key=KEY, identities=[Identity(wa_id="15550000001")])
        assert known.answers(["15550000001", None])
        known.touch(["15550000001"])
        assert not known.answers(["15550000001"])
        assert known.answers(["15550000002"])
        known.forget()
        assert not known.answers(["15550000002"])


def test_a_body_of_first_messages_is_stored_on_one_lookup_in_one_flush(
    meta: MetaWebhook, engine: Engine
) -> None:
    body = simulate.batch_body(
        *(simulate.text_body(wa_id=f"1555010{n:04d}", text="hello") for n in range(20))
    )
    with statements_on(engine) as statements:
        answer = meta.post(body)
    assert answer.status_code == 200
    assert answer.get_json()["messages"] == 20
    assert not [s for s in statements if s.startswith("SAVEPOINT")]  # never stored apart
    contact_reads = [s for s in statements if "FROM contact " in s and not s.startswith("INSERT")]
    # One statement for the body: nobody holds these numbers, so no contact row is read.
    assert len(contact_reads) == 1, contact_reads
    # Every reply is written after the last message is stored: one flush for the body.
    contacts = [i for i, s in enumerate(statements) if re.search(r'INSERT INTO "?contact"? ', s)]
    replies = [i for i, s in enumerate(statements) if re.search(r'INSERT INTO "?outbox"? ', s)]
    if is_postgres(engine):  # the contacts, their messages and the replies: one statement
        assert contacts == replies and len(replies) == 1, (contacts, replies)
    else:  # SQLite: the contacts in one statement (ids the lookup handed out), then the replies
        assert len(contacts) == 1 and replies and min(replies) > max(contacts), (contacts, replies)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Contact)).one() == 20
        outbound = select(func.count()).select_from(Message).where(Message.direction == "out")
        assert session.exec(outbound).one() == 20
        assert session.exec(select(func.count()).select_from(OutboxItem)).one() >= 20


def test_new_people_found_by_username_among_held_new_ones_get_ids_of_their_own(
    meta: MetaWebhook, engine: Engine
) -> None:
    """The first and last senders' rows are held with ids the lookup handed out; the second,
    named by a username, is inserted at once. On SQLite every one of those ids is one past the
    largest so far: the inserted row must take none that a held row has or will have, or the
    body fails and is stored again, each message apart."""
    bodies = [
        json.loads(simulate.text_body(wa_id=f"1555030000{n}", text="hello")) for n in (1, 2, 3)
    ]
    bodies[1]["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["username"] = "nour"
    with statements_on(engine) as statements:
        answer = meta.post(simulate.batch_body(*(json.dumps(b).encode() for b in bodies)))
    assert answer.status_code == 200
    assert not [s for s in statements if s.startswith("SAVEPOINT")]  # stored together
    with Session(engine) as session:
        contacts = session.exec(select(Contact).order_by(col(Contact.wa_id))).all()
        assert [(c.wa_id, c.username) for c in contacts] == [
            ("15550300001", None),
            ("15550300002", "nour"),
            ("15550300003", None),
        ]
        assert len({c.id for c in contacts}) == 3
        inbound = select(Message.contact_id).where(Message.direction == "in")
        assert sorted(session.exec(inbound).all()) == sorted(c.id for c in contacts)


def test_c20_a_redelivered_body_is_answered_by_the_lookup_alone(
    meta: MetaWebhook, engine: Engine
) -> None:
    body = simulate.batch_body(
        *(simulate.text_body(wa_id=f"1555020{n % 4:04d}", text=f"hi {n}") for n in range(12))
    )
    assert meta.post(body).get_json()["messages"] == 12
    with statements_on(engine) as statements:
        again = meta.post(body)
    assert again.get_json()["duplicates"] == 12 and again.get_json()["messages"] == 0
    # The body's one lookup told every message stored: nothing written, nothing read again.
    writes = [s for s in statements if s.split()[0] in {"INSERT", "UPDATE", "DELETE", "WITH"}]
    assert [s for s in writes if not s.startswith("WITH held")] == []
    assert len([s for s in statements if "FROM message" in s]) == 1, statements


def test_c20_the_lookup_names_the_messages_stored_before(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact = Contact(wa_id="15550000001")
        session.add(contact)
        session.flush()
        session.add(
            Message(
                contact_id=contact.id,
                direction="in",
                wamid="wamid.STORED",
                type="text",
                status="received",
                meta_timestamp=AT,
            )
        )
        session.flush()
        known = look_up_people(
            session,
            key=KEY,
            identities=[Identity(wa_id="15550000002")],
            wamids=["wamid.STORED", "wamid.NEW"],
        )
        assert known.stored == {"wamid.STORED"}


def test_c25_c27_a_body_naming_a_few_identifiers_gets_the_same_answers(engine: Engine) -> None:
    """A few identifiers go to PostgreSQL one by one rather than as a list: each person alone
    is answered as the per-message queries answer."""
    with session_scope(engine) as session:
        identities = _people(session)
        for identity in identities:
            known = look_up_people(session, key=KEY, identities=[identity], wamids=["wamid.X"])
            _answers_as_each_query(session, known, identity)
        both = look_up_people(session, key=KEY, identities=identities[2:3])
        assert len(both.holders_of(identities[2])) == 2  # by number and by user id
