"""What the intake must know about a body's messages and the people they name, read once per
body.

Storing a message asks four things: was it stored before (Meta redelivers), were its sender
erased (C25), which contacts hold their number or user id now (locked), and which contact held
one of them before a change. Asked per message that is four round trips; asked here for the
whole body it is one, whatever its size, and a second to read the holders' rows, with their
dialogue states, when there are any. An answer goes stale once the transaction changes the
people it is about, so each message that does marks their identifiers touched, and a later
message naming one of them asks again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.engine import Dialect
from sqlmodel import Session, col

from flows.model import DialogueState
from storage.db import is_postgres
from storage.dialogue_state import state_reads, states_from
from storage.identity import KEYS, Identity
from storage.libpq_pipeline import begin_with
from storage.models import Contact, DialogueRow
from storage.orm_rows import loaded, rows_of, select_all
from storage.select_text import result_reader
from storage.suppression import ERASURE_REASON, suppression_digester
from storage.types import UTCDateTime

_ERASED = "erased"
_EARLIER = "earlier"
_HELD = "held"
_STORED = "stored"
_FRESH = "fresh"


@dataclass(frozen=True, slots=True)
class _Change:
    field: str
    previous: str
    occurred_at: datetime
    contact_id: int


@dataclass(slots=True)
class KnownPeople:
    """Answers for one body, good for identifiers nobody in this transaction has changed."""

    digest: Callable[[str], str]  # identifier -> keyed hash, as storage.suppression has it
    erased: dict[str, datetime]
    holders: dict[str, list[Contact]]
    changes: list[_Change]
    stored: set[str] = field(default_factory=set)  # wamids of the messages stored before
    # The holders' dialogue rows and states (storage.dialogue_state), read with them.
    states: dict[int, tuple[DialogueRow, DialogueState]] = field(default_factory=dict)
    # When nobody holds any of the identifiers: contact ids allocated for the new people, so
    # their rows can be written with the body's other rows (storage.contacts). Taken in order,
    # so ids follow the order people are created in, as the lock order expects.
    fresh: list[int] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    forgotten: bool = False  # after a change nobody can bound (an identity notice)
    written: set[int] = field(default_factory=set)  # contacts the transaction wrote about since

    def contacts(self) -> list[Contact]:
        """Every contact holding one of the identifiers, once each."""
        return list({c.id: c for holders in self.holders.values() for c in holders}.values())

    def answers(self, identifiers: Iterable[str | None]) -> bool:
        """Whether these answers still hold for a message naming these identifiers."""
        return not self.forgotten and not any(i in self.touched for i in identifiers if i)

    def forget(self) -> None:
        self.forgotten = True

    def touch(self, identifiers: Iterable[str | None]) -> None:
        self.touched.update(i for i in identifiers if i)

    def last_erased_at(self, identifiers: Iterable[str | None]) -> datetime | None:
        """As storage.suppression.last_erased_at, from what was read."""
        times = [self.erased.get(self.digest(i)) for i in identifiers if i]
        return max((t for t in times if t is not None), default=None)

    def holders_of(self, identity: Identity) -> list[Contact]:
        """As storage.identity.lock_holders: oldest first, already locked."""
        found = {c.id: c for key in identity.keys() for c in self.holders.get(key, ())}  # noqa: SIM118
        return [found[i] for i in sorted(found)]  # type: ignore[type-var]

    def earlier_holder(self, identity: Identity, *, at: datetime) -> int | None:
        """As storage.identity.earlier_holder."""
        held = {(name, value) for name in KEYS if (value := getattr(identity, name))}
        later = [c for c in self.changes if (c.field, c.previous) in held and c.occurred_at > at]
        return min(later, key=lambda c: c.occurred_at).contact_id if later else None


def look_up_people(
    session: Session, *, key: bytes, identities: Iterable[Identity], wamids: Iterable[str] = ()
) -> KnownPeople:
    """Which of the messages (wamids) were stored before, who holds the identifiers (locked),
    erasures and earlier holders, in one round trip; the holders read in a second, only when
    there are any and a message to store."""
    identities = list(identities)
    wamids = sorted(set(wamids))
    digest = suppression_digester(key)
    keys = sorted({k for identity in identities for k in identity.keys()})  # noqa: SIM118
    named = {i for identity in identities for i in (*identity.keys(), identity.parent_user_id) if i}
    erased: dict[str, datetime] = {}
    changes: list[_Change] = []
    held: list[int] = []
    stored: set[str] = set()
    fresh: list[int] = []
    if named or wamids:
        params: dict[str, object] = {
            "digests": sorted(map(digest, named)),
            "keys": keys or [""],
            "wamids": wamids or [""],
        }
        people = len({i.keys() for i in identities if i.keys()})
        connection = session.connection()
        postgres = is_postgres(session.get_bind())
        statement, listed = _people(params, postgres=postgres)  # type: ignore[arg-type]
        if postgres:
            # The transaction's first statement: its BEGIN travels with it.
            rows = begin_with(connection, statement, {**listed, "people": people})
        else:
            rows = _times_read(connection.exec_driver_sql(statement, listed), connection.dialect)
        for kind, name, previous, at, contact_id in rows:
            if kind == _ERASED:
                if at is not None and (name not in erased or erased[name] < at):
                    erased[name] = at
            elif kind == _EARLIER:
                changes.append(_Change(name, previous, at, contact_id))
            elif kind == _STORED:
                stored.add(name)
            elif kind == _FRESH:
                fresh.append(contact_id)
            else:
                held.append(contact_id)
        if fresh and not postgres:  # the largest id so far: SQLite's own next ones follow it
            fresh = list(range(fresh[0] + 1, fresh[0] + 1 + people))
    holders: dict[str, list[Contact]] = {}
    states: dict[int, tuple[DialogueRow, DialogueState]] = {}
    if held and (not wamids or len(stored) < len(wamids)):  # not when every message is stored
        ids = sorted(held)
        # Their rows and their dialogue states, which the body acts on: one round trip.
        rows, *read = select_all(session, [(_BY_ID, {"ids": ids}), *state_reads(ids)])
        contacts = loaded(session, Contact, rows)
        states = states_from(session, contacts, read)
        for contact in contacts:
            for name in KEYS:
                value = getattr(contact, name)
                if value in keys:
                    holders.setdefault(value, []).append(contact)
    return KnownPeople(
        digest=digest,
        erased=erased,
        holders=holders,
        changes=changes,
        stored=stored,
        fresh=fresh,
        states=states,
    )


# A list this short is sent as parameters of their own, a longer one as an array.
_FEW = 4


def _people(lists: dict[str, list[str]], *, postgres: bool) -> tuple[str, dict[str, object]]:
    """The body's lookup as constant text, and its parameters: (kind, name, previous, at,
    contact_id) rows, the erasures, changes and stored messages, the holders' ids (on
    PostgreSQL locked in id order, so two bodies naming the same people never deadlock; on
    SQLite the transaction's BEGIN IMMEDIATE holds the database's write lock already), and, when
    nobody holds any of the keys, ids for the new people.

    PostgreSQL plans a statement once per connection and keeps the plan while it costs no more
    than planning afresh. A list of unknown length (an array) is planned for ten values; a few
    named one by one are planned for what they are. A body's few identifiers, named one by one,
    are then read by index, where an array was read by a scan of the whole contact table, or
    planned afresh for every body once the table outgrew that. SQLite has no arrays.
    """
    params: dict[str, object] = {}
    shape = []
    for name, values in lists.items():
        if len(values) <= _FEW or not postgres:
            params |= {f"{name}{n}": value for n, value in enumerate(values)}
            shape.append((name, len(values)))
        else:
            params[name] = values
            shape.append((name, 0))
    return _people_text(tuple(shape), postgres), params


@lru_cache(maxsize=256)
def _people_text(shape: tuple[tuple[str, int], ...], postgres: bool) -> str:
    """The statement for lists of these lengths (0: an array)."""

    def named(name: str) -> str:  # as each driver takes named parameters
        return f"%({name})s" if postgres else f":{name}"

    within = {
        name: f"IN ({', '.join(named(f'{name}{n}') for n in range(count))})"
        if count
        else f"= ANY({named(name)})"
        for name, count in shape
    }
    keys, digests, wamids = within["keys"], within["digests"], within["wamids"]
    if postgres:
        lock = " FOR UPDATE"
        fresh = (
            f"SELECT '{_FRESH}', NULL, NULL, NULL, nextval('contact_id_seq')::int"
            f" FROM generate_series(1, {named('people')}) WHERE NOT EXISTS (SELECT FROM held)"
        )
    else:
        # The largest id, past which the new people's are allocated as SQLite allocates them
        # itself (INTEGER PRIMARY KEY without AUTOINCREMENT: one past the largest).
        lock = ""
        fresh = (
            f"SELECT '{_FRESH}', NULL, NULL, NULL, (SELECT coalesce(max(id), 0) FROM contact)"
            " WHERE NOT EXISTS (SELECT 1 FROM held)"
        )
    return f"""
WITH held AS (
    SELECT id FROM contact WHERE wa_id {keys} OR user_id {keys}
    ORDER BY id{lock}
)
SELECT '{_ERASED}', digest, CAST(NULL AS TEXT), max(erased_at), CAST(NULL AS INTEGER)
FROM erasure_record WHERE digest {digests} GROUP BY digest
UNION ALL
SELECT '{_ERASED}', digest, NULL, max(created_at), NULL FROM suppression
WHERE digest {digests} AND reason = '{ERASURE_REASON}' GROUP BY digest
UNION ALL
SELECT '{_EARLIER}', field, previous, occurred_at, contact_id FROM identity_change
WHERE field IN ({", ".join(f"'{key}'" for key in KEYS)}) AND previous {keys}
UNION ALL
SELECT '{_STORED}', wamid, NULL, NULL, NULL FROM message WHERE wamid {wamids}
UNION ALL
SELECT '{_HELD}', NULL, NULL, NULL, id FROM held
UNION ALL
{fresh}
"""


def _times_read(rows: Iterable[Sequence[Any]], dialect: Dialect) -> Iterator[tuple[Any, ...]]:
    """SQLite's rows with their times read as the columns' type reads them (it keeps text)."""
    read = _time_reader(dialect)
    for kind, name, previous, at, contact_id in rows:
        yield kind, name, previous, None if at is None else read(at), contact_id


@lru_cache(maxsize=4)
def _time_reader(dialect: Dialect) -> Callable[[Any], Any]:
    reader = result_reader(UTCDateTime(), dialect)
    assert reader is not None, "a time column reads its values"
    return reader


_BY_ID = rows_of(Contact).where(col(Contact.id).in_(bindparam("ids", expanding=True)))
