"""Every way a body's statuses are written leaves what applying them one by one would: the
portable path (SQLite), PostgreSQL's one statement in the caller's transaction, and the same
statement alone in autocommit; and the last still answers only after COMMIT, keeps an item the
database refuses for support, and answers 503 while the database is down."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sqltext
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError
from sqlmodel import Session, col, select

import bot.meta.parser
from bot import create_app
from bot.dev import simulate
from bot.wiring.services import services
from storage import statuses, statuses_pg
from storage.db import is_postgres, make_engine, session_scope
from storage.models import Contact, FailedPayload, Message, StatusEvent
from storage.status_groups import StatusGroups
from storage.status_steps import Stored, forward_steps, newness
from storage.statuses import StatusRow, record_alone, record_grouped, record_statuses
from tests.conftest import APP_SECRET
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STAGES = ("queued", "sent", "delivered", "read")
REPORTED = ("sent", "delivered", "read", "failed", "played")


@pytest.fixture(params=["suite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, database_url: str) -> Iterator[Engine]:
    """The suite's backend, and PostgreSQL, whose path is a statement of its own."""
    url = database_url if request.param == "suite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def seed(engine: Engine, stored: list[tuple[str, int | None]], tag: str) -> dict[str, Stored]:
    """Sent messages at the stages given, with the error given; Stored by wamid."""
    out = {}
    with session_scope(engine) as session:
        contact = Contact(wa_id=f"4477{uuid.uuid4().int % 10**8:08d}", created_at=AT)
        session.add(contact)
        session.flush()
        assert contact.id is not None
        for i, (status, code) in enumerate(stored):
            message = Message(
                contact_id=contact.id,
                direction="out",
                wamid=f"wamid.{tag}.{i}",
                type="text",
                status=status,
                error_code=code,
                error_title="earlier" if code else None,
                meta_timestamp=AT,
            )
            session.add(message)
            out[message.wamid] = Stored(message.id, contact.id, status, code, message.error_title)
    return out


def status_row(wamid: str, status: str, seconds: int, code: int | None) -> StatusRow:
    return StatusRow(
        wamid=wamid,
        status=status,
        meta_timestamp=AT + timedelta(seconds=seconds),
        phone_number_id="1",
        recipient_id="447700900001",
        recipient_user_id=None,
        recipient_participant_id=None,
        error_code=code,
        error_title=f"error {code}" if code else None,
        raw={"id": wamid, "status": status, "note": "ünïcode ✓"},
    )


def messages(engine: Engine, wamids: list[str]) -> dict[str, tuple]:
    with Session(engine) as session:
        found = session.exec(select(Message).where(col(Message.wamid).in_(wamids)))
        return {m.wamid: (m.status, m.status_at, m.error_code, m.error_title) for m in found}


bodies = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(STAGES), st.sampled_from([None, 7])), min_size=1, max_size=3
    ),
    st.lists(
        st.tuples(
            st.integers(0, 3),  # which message; one past the last is not ours
            st.sampled_from(REPORTED),
            st.integers(0, 9),
            st.sampled_from([None, None, 131026, 131050]),
        ),
        min_size=1,
        max_size=10,
    ),
    st.booleans(),  # recorded alone, where there is no failed status
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_a_body_moves_its_messages_exactly_as_the_steps_say(database: Engine, body) -> None:
    stored_states, reported, alone = body
    tag = uuid.uuid4().hex[:12]
    stored = seed(database, stored_states, tag)
    rows = [
        status_row(f"wamid.{tag}.{min(i, len(stored_states))}", status, seconds, code)
        for i, status, seconds, code in reported
    ]
    if alone and not any(row.status == "failed" for row in rows):
        applied = record_alone(database, rows)
    else:
        with session_scope(database) as session:
            applied = record_statuses(session, rows)

    new = newness(rows, {(row.wamid, row.status) for row in rows})  # every key is new here
    steps = forward_steps(stored, [row for row, is_new in zip(rows, new, strict=True) if is_new])
    assert applied.new == tuple(new)
    assert applied.moved == tuple(steps)
    expected = {wamid: (m.status, None, m.error_code, m.error_title) for wamid, m in stored.items()}
    for step in steps:
        expected[step.wamid] = (step.status, step.occurred_at, step.error_code, step.error_title)
    assert messages(database, list(stored)) == expected

    again = record_alone(database, rows)  # a redelivery: nothing new, nothing moves
    assert (again.new, again.moved) == ((False,) * len(rows), ())
    assert messages(database, list(stored)) == expected


@pytest.mark.parametrize("alone", [True, False])
def test_a_body_naming_each_message_once_moves_them_as_the_steps_say(
    database: Engine, alone: bool
) -> None:
    """A campaign's statuses, each of another message (on PostgreSQL a statement of its own):
    a step keeps the stored error unless it brings one, and a stage not above the stored one,
    the same included, is no step."""
    tag = uuid.uuid4().hex[:12]
    stored = seed(database, [("sent", 7), ("sent", None), ("delivered", None), ("read", 7)], tag)
    first, second, third, fourth = stored
    rows = [
        status_row(first, "delivered", 1, None),  # keeps error 7
        status_row(second, "failed", 2, 131026),  # brings its own
        status_row(third, "delivered", 3, None),  # the stage it is at: no step
        status_row(fourth, "delivered", 4, None),  # behind: no step
        status_row(f"wamid.{tag}.theirs", "read", 5, None),  # not ours: kept, moves nothing
    ]
    if alone:
        applied = record_alone(database, rows)
    else:
        with session_scope(database) as session:
            applied = record_statuses(session, rows)

    steps = forward_steps(stored, rows)
    assert [step.wamid for step in steps] == [first, second]
    assert steps[0].error_code == 7
    assert applied.new == (True,) * len(rows)
    assert applied.moved == tuple(steps)
    expected = {wamid: (m.status, None, m.error_code, m.error_title) for wamid, m in stored.items()}
    for step in steps:
        expected[step.wamid] = (step.status, step.occurred_at, step.error_code, step.error_title)
    assert messages(database, list(stored)) == expected
    assert record_alone(database, rows).new == (False,) * len(rows)  # a redelivery


def test_statuses_recorded_alone_are_committed_when_it_returns(database: Engine) -> None:
    stored = seed(database, [("sent", None), ("sent", None)], "alone")
    one, two = list(stored)
    record_alone(database, [status_row(one, "delivered", 1, None)])
    record_alone(database, [status_row(one, "read", 2, None), status_row(two, "read", 3, None)])

    other = make_engine(database.url.render_as_string(hide_password=False))
    try:  # another engine, so another connection: only what is committed shows
        seen = messages(other, [one, two])
    finally:
        other.dispose()
    assert {wamid: state[0] for wamid, state in seen.items()} == {one: "read", two: "read"}
    if is_postgres(database):  # the pooled connection went back as it was, not in autocommit
        with database.connect() as connection:
            assert connection.connection.driver_connection.autocommit is False


@pytest.mark.postgres
@pytest.mark.parametrize("count", [1, 3])
def test_c26_a_status_postgresql_refuses_costs_only_its_item(
    postgres_url: str, app_config: dict[str, str], monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """Recorded alone, the refusal is told from storage down as on any other path (C26)."""
    monkeypatch.setattr(bot.meta.parser, "check_status", lambda status: None)
    app = create_app({**app_config, "DATABASE_URL": postgres_url})
    engine = services(app).engine
    try:
        good = [f"wamid.GOOD{n}" for n in range(count - 1)]
        body = simulate.batch_body(
            *(simulate.status_body(wamid=w, status="read", recipient_id="44770") for w in good),
            simulate.status_body(wamid="w" * 300, status="read", recipient_id="44770"),
        )
        response = app.test_client().post(
            "/webhook", data=body, headers={"X-Hub-Signature-256": simulate.sign(body, APP_SECRET)}
        )
        assert response.status_code == 200
        assert (response.json["statuses"], response.json["malformed"]) == (count - 1, 1)
        with Session(engine) as session:
            assert sorted(session.exec(select(StatusEvent.wamid))) == good
            [problem] = session.exec(select(FailedPayload.problem))
        assert problem.endswith("could not be stored (DataError)")
        with engine.connect() as connection:
            assert connection.connection.driver_connection.autocommit is False
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_database_down_a_status_is_answered_503_and_its_redelivery_stored_once(
    app_config: dict[str, str], postgres_url: str, live_server_factory
) -> None:
    target = urlsplit(postgres_url.replace("postgresql+psycopg", "postgresql"))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.start()
    app_config["DATABASE_URL"] = postgres_url.replace(
        f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{proxy.port}"
    )
    app = create_app(app_config)
    base_url = live_server_factory(app)
    engine = services(app).engine
    stored = seed(engine, [("sent", None), ("sent", None)], "down")
    one, two = list(stored)

    def post(body: bytes) -> int:
        signature = simulate.sign(body, APP_SECRET)
        return requests.post(
            f"{base_url}/webhook", data=body, headers={"X-Hub-Signature-256": signature}, timeout=30
        ).status_code

    single = simulate.status_body(wamid=one, status="delivered", recipient_id="44770")
    batch = simulate.batch_body(
        simulate.status_body(wamid=one, status="read", recipient_id="44770"),
        simulate.status_body(wamid=two, status="read", recipient_id="44770"),
    )
    try:
        assert post(simulate.status_body(wamid=two, status="delivered", recipient_id="4")) == 200
        proxy.stop()
        assert (post(single), post(batch)) == (503, 503)
        proxy.start()
        assert [post(single), post(single), post(batch), post(batch)] == [200] * 4
        with Session(engine) as session:
            assert len(session.exec(select(StatusEvent)).all()) == 4
        assert {wamid: state[0] for wamid, state in messages(engine, [one, two]).items()} == {
            one: "read",
            two: "read",
        }
    finally:
        proxy.stop()
        engine.dispose()


@pytest.mark.parametrize("body", [1, 2])
def test_the_json_a_status_keeps_is_the_item_meta_sent(database: Engine, body: int) -> None:
    """The raw item travels as JSON text on PostgreSQL's path, alone or in a body's document:
    it must come back the same, an integer past 64 bits included."""
    stored = seed(database, [("sent", None)] * body, "raw")
    raws = [
        {"id": wamid, "status": "read", "nested": {"emoji": "😀", "n": 2**40, "x": [1.5, None]}}
        for wamid in stored
    ]
    raws[-1]["nested"]["big"] = 2**70
    rows = [
        StatusRow(**{**_fields(status_row(raw["id"], "read", 1, None)), "raw": raw}) for raw in raws
    ]
    record_alone(database, rows)
    with Session(database) as session:
        kept = session.exec(select(StatusEvent.wamid, StatusEvent.raw)).all()
        assert dict(kept) == {raw["id"]: raw for raw in raws}


def _fields(row: StatusRow) -> dict:
    return {name: getattr(row, name) for name in StatusRow.__slots__}


class HoldFirstGroup:
    """Wraps a commit of status groups: the first waits until `joining` more requests wait
    behind it, so that they go in one group."""

    def __init__(self, commit, joining: int) -> None:  # type: ignore[no-untyped-def]
        self.commit, self.joining, self.sizes = commit, joining, []
        self.groups: StatusGroups | None = None

    def joined(self) -> bool:
        return self.groups is not None and len(self.groups._waiting) >= self.joining

    def __call__(self, engine: Engine, rows: list[StatusRow]) -> tuple[bool, ...]:
        self.sizes.append(len(rows))
        if len(self.sizes) == 1:
            assert wait_until(self.joined, timeout=10, interval=0.001), "the others never joined"
        return self.commit(engine, rows)


def grouped_at_once(
    database: Engine, monkeypatch: pytest.MonkeyPatch, bodies: list[StatusRow]
) -> tuple[list[object], list[int]]:
    """Each row recorded by a request of its own (record_grouped), all at once, the first held
    in its commit until all the others joined the next group; what each got, and group sizes."""
    held = HoldFirstGroup(
        statuses_pg.record_each_and_commit if is_postgres(database) else statuses._newness_alone,
        joining=len(bodies) - 1,
    )
    monkeypatch.setattr(statuses_pg, "record_each_and_commit", held)
    monkeypatch.setattr(statuses, "_newness_alone", held)
    outcomes: list[object] = [None] * len(bodies)

    def request(n: int) -> None:
        try:
            outcomes[n] = record_grouped(database, [bodies[n]])
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=request, args=(n,)) for n in range(len(bodies))]
    threads[0].start()
    made = wait_until(lambda: database in statuses._GROUPS, timeout=10, interval=0.001)
    assert made, "the first request never began its group"
    held.groups = statuses._GROUPS[database]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes, held.sizes


def test_single_statuses_committed_together_leave_what_one_by_one_would(
    database: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = seed(database, [("sent", None), ("sent", 7), ("delivered", None)], "together")
    one, two, three = list(stored)
    bodies = [
        status_row(one, "delivered", 0, None),  # leads alone
        status_row(two, "read", 1, None),
        status_row(one, "read", 2, None),
        status_row(two, "delivered", 3, None),  # new, but behind read: moves nothing
        status_row(three, "failed", 4, 131026),
        status_row(one, "read", 5, None),  # the same key again: not new
    ]
    outcomes, sizes = grouped_at_once(database, monkeypatch, bodies)
    assert sizes == [1, 5]
    assert outcomes == [(True,), (True,), (True,), (True,), (True,), (False,)]
    expected = {
        one: ("read", AT + timedelta(seconds=2), None, None),
        two: ("read", AT + timedelta(seconds=1), 7, "earlier"),
        three: ("failed", AT + timedelta(seconds=4), 131026, "error 131026"),
    }
    assert messages(database, [one, two, three]) == expected


@pytest.mark.postgres
def test_c26_a_status_postgresql_refuses_costs_its_group_only_its_own_body(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(postgres_url)
    try:
        stored = seed(engine, [("sent", None), ("sent", None)], "refused")
        one, two = list(stored)
        bad = status_row("w" * 300, "read", 3, None)  # longer than a wamid column takes
        bodies = [status_row(one, "delivered", 0, None), status_row(two, "read", 1, None), bad]
        bodies.append(status_row(one, "read", 2, None))
        outcomes, sizes = grouped_at_once(engine, monkeypatch, bodies)
        assert sizes == [1, 3, 1, 1, 1]  # the group refused, then each of its requests alone
        assert outcomes[:2] + outcomes[3:] == [(True,)] * 3
        assert isinstance(outcomes[2], DataError)
        assert {wamid: state[0] for wamid, state in messages(engine, [one, two]).items()} == {
            one: "read",
            two: "read",
        }
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_single_statuses_committed_together_lock_their_messages_in_one_order(
    postgres_url: str,
) -> None:
    """Two groups naming the same messages in opposite orders, both held up on the one in the
    middle: taken in the order given, each would then wait for the other's."""
    engine = make_engine(postgres_url)
    try:
        wamids = list(seed(engine, [("sent", None)] * 6, "order"))
        forward = [status_row(w, "delivered", n, None) for n, w in enumerate(wamids)]
        backward = [status_row(w, "read", 9 - n, None) for n, w in enumerate(wamids)][::-1]
        outcomes: dict[str, object] = {}

        def commit(name: str, rows: list[StatusRow]) -> None:
            try:
                outcomes[name] = statuses_pg.record_each_and_commit(engine, rows)
            except Exception as exc:
                outcomes[name] = exc

        with engine.connect() as holder:
            holder.execute(
                sqltext("SELECT 1 FROM message WHERE wamid = :w FOR UPDATE"), {"w": wamids[3]}
            )
            threads = [
                threading.Thread(target=commit, args=("forward", forward)),
                threading.Thread(target=commit, args=("backward", backward)),
            ]
            for thread in threads:
                thread.start()
            both_wait = wait_until(lambda: _waiting_on_locks(engine) >= 2, timeout=10)
            assert both_wait, "the groups never both waited"
            holder.rollback()
        for thread in threads:
            thread.join(30)
        assert outcomes == {"forward": (True,) * 6, "backward": (True,) * 6}
        assert {state[0] for state in messages(engine, wamids).values()} == {"read"}
    finally:
        engine.dispose()


def _waiting_on_locks(engine: Engine) -> int:
    with engine.connect() as connection:  # a transaction of its own: a fresh view of activity
        return int(
            connection.execute(
                sqltext(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
        )


def test_statuses_posted_at_once_are_each_stored_once_and_answered_after_commit(
    database: Engine, app_config: dict[str, str], live_server_factory
) -> None:
    """Posted by eight connections at once to a threaded server, as Meta delivers a campaign's
    statuses: whatever groups they commit in, each is answered as new once, kept once, and
    seen by another connection once answered."""
    app = create_app({**app_config, "DATABASE_URL": database.url.render_as_string(False)})
    base_url = live_server_factory(app)
    wamids = list(seed(database, [("sent", None)] * 10, "atonce"))
    reported = [(w, s) for w in wamids for s in ("delivered", "read")] + [(wamids[0], "read")] * 5

    def post(report: tuple[str, str]) -> tuple[int, int, int]:
        body = simulate.status_body(wamid=report[0], status=report[1], recipient_id="44770")
        answer = requests.post(
            f"{base_url}/webhook",
            data=body,
            headers={"X-Hub-Signature-256": simulate.sign(body, APP_SECRET)},
            timeout=30,
        )
        seen = messages(database, [report[0]])[report[0]][0]  # committed before the answer
        assert STAGES.index(seen) >= STAGES.index("delivered"), seen
        return answer.status_code, answer.json()["statuses"], answer.json()["duplicates"]

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, reported))
        assert {code for code, _, _ in answers} == {200}
        assert sum(new for _, new, _ in answers) == 20
        assert sum(again for _, _, again in answers) == 5
        with Session(database) as session:
            assert len(session.exec(select(StatusEvent)).all()) == 20
        assert {state[0] for state in messages(database, wamids).values()} == {"read"}
    finally:
        services(app).engine.dispose()
