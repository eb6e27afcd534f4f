"""C16, C18, C29: on PostgreSQL the import records a batch set-based (storage.consent_import).
Held to the row-by-row way (bot.intake, as POST /api/v1/consents records) on the same file from
the same starting state, it leaves the same contacts, ledger, current consent, consent webhooks,
double opt-in confirmations and rejects, on the first run and on the second (which adds nothing).

Always on PostgreSQL (the postgres_url fixture), whichever backend the run is for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, col, select

from bot.importing import import_file
from bot.wiring.services import services
from storage.models import Consent, ConsentEvent, ConsentWebhook, Contact, Message, OutboxItem
from storage.suppression import suppress
from tests.conftest import Api, _truncate

NOW = datetime.now(UTC).replace(microsecond=0)
T = NOW - timedelta(days=3)
TEXT = "Yes, Nimbus Bakery may send me order updates and offers on WhatsApp. Reply STOP to stop."
WITHDRAWN_LATER = "971501110001"  # withdrew after the paper form: the import never wins
WITHDRAWN_BEFORE = "971501110002"  # withdrew before it: the paper form is newer and wins
ERASED = "971501110003"
NEW = "971501110004"
TWICE = "971501110005"
CONFIRMED = "971501110006"  # offers granted on WhatsApp: confirmed, so never held again
USER_ID = "US.1234567890123"


GULF = timezone(timedelta(hours=4))


def at(hours: float) -> str:
    return (T + timedelta(hours=hours)).isoformat()


ROWS = [
    f'{WITHDRAWN_LATER},orders;offers,{at(0)},"{TEXT}"',
    f'+971 50 111 0002,orders;offers,{at(0)},"{TEXT}"',
    f'{ERASED},orders,{at(0)},"{TEXT}"',
    f'{NEW},orders;offers,{at(0)},"{TEXT}"',
    f"{NEW},orders,{at(-1)},older than the row before",  # kept in the ledger, moves nothing
    f"{NEW},orders,{at(-0.5)},between the two",  # older than the newest before it: moves nothing
    f"{NEW},orders;offers,{at(1)},newer",
    f"{NEW},offers,{at(1)},the same moment and another text",  # a tie: the later row wins
    f'{TWICE},orders,{at(0)},"{TEXT}"',
    f'{TWICE},orders,{at(0)},"{TEXT}"',  # the same row again: a duplicate
    f'{TWICE},offers;orders,{at(0)},"{TEXT}"',  # orders a duplicate, offers new
    f'{CONFIRMED},offers,{at(0)},"{TEXT}"',
    f'00971 (50) 111-0007,offers,{at(2)},"{TEXT}"',
    f"12,orders,{at(0)},not a number",
    f'{NEW},orders,{(T - timedelta(hours=2)).replace(tzinfo=None).isoformat()},"{TEXT}"',  # no zone
    f"{NEW},orders,{(T + timedelta(hours=3)).astimezone(GULF).isoformat()},in Dubai",
]


def prepare(app: Any) -> None:
    """The same starting state for each way: earlier decisions made through the API, an
    erasure."""
    api = Api(app.test_client())
    for wa_id, hours in ((WITHDRAWN_LATER, 5), (WITHDRAWN_BEFORE, -5)):
        body = {
            "wa_id": wa_id,
            "categories": ["orders", "offers"],
            "granted": False,
            "source": "sms",
            "collected_at": at(hours),
            "text": "STOP",
        }
        assert api.post("/consents", body).status_code == 201
    body = {
        "wa_id": CONFIRMED,
        "categories": ["offers"],
        "granted": True,
        "source": "whatsapp",
        "collected_at": at(-10),
        "text": "offers please",
    }
    assert api.post("/consents", body).status_code == 201
    with Session(services(app).engine) as session:
        suppress(session, key=services(app).settings.suppression_key, wa_id=ERASED, reason="x")
        session.commit()


LEDGER = ("category", "granted", "source", "occurred_at", "text_version", "text", "evidence")
STATE = ("category", "granted", "source", "updated_at", "granted_at", "confirmed")


def fields(row: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in names)


def snapshot(app: Any) -> dict[str, Any]:
    """Every row an import writes, by the contact's identifiers (ids, times of recording and
    event ids aside)."""
    with Session(services(app).engine) as session:
        who = {c.id: (c.wa_id, c.user_id) for c in session.exec(select(Contact))}
        ledger = [
            (who[e.contact_id], *fields(e, LEDGER))
            for e in session.exec(select(ConsentEvent).order_by(col(ConsentEvent.id)))
        ]
        current = session.exec(select(Consent))
        state = sorted(((who[c.contact_id], *fields(c, STATE)) for c in current), key=str)
        hooks = []
        for hook in session.exec(select(ConsentWebhook).order_by(col(ConsentWebhook.id))):
            body = json.loads(hook.body)
            assert body.pop("id") == hook.event_id and len(hook.event_id) == 32
            hooks.append((who[hook.contact_id], hook.type, body, hook.attempts))
        sent = [
            (who[m.contact_id], m.type, m.purpose, m.status, m.text, item.payload)
            for item, m in session.exec(
                select(OutboxItem, Message)
                .join(Message, col(Message.id) == OutboxItem.message_id)
                .order_by(col(OutboxItem.id))
            )
        ]
    return {
        "contacts": sorted(who.values(), key=str),
        "ledger": ledger,
        "state": state,
        "webhooks": hooks,
        "sent": sent,
    }


def imported(app: Any, path: Path, batch_rows: int, *, row_by_row: bool) -> tuple[Any, ...]:
    report = import_file(services(app), path, "paper", batch_rows=batch_rows, row_by_row=row_by_row)
    rejects = report.rejects_path.read_text(encoding="utf-8") if report.rejects_path else ""
    counts = (report.rows, report.recorded, report.already, report.rejected)
    return (*counts, report.confirmations, report.exit_code, rejects)


def both_ways(app: Any, tmp_path: Path, rows: list[str], batch_rows: int) -> list[Any]:
    """Each way twice from the same state: what it reported and left, after each run."""
    path = tmp_path / "forms.csv"
    path.write_text("wa_id,categories,collected_at,text\n" + "\n".join(rows) + "\n", "utf-8")
    outcomes = []
    for row_by_row in (False, True):
        _truncate(services(app).engine)
        prepare(app)
        runs = []
        for _ in range(2):
            runs.append((imported(app, path, batch_rows, row_by_row=row_by_row), snapshot(app)))
        outcomes.append(runs)
    return outcomes


@pytest.fixture
def postgres_app(make_app, postgres_url):  # type: ignore[no-untyped-def]
    def make(**changes: str) -> Any:
        return make_app(
            DATABASE_URL=postgres_url,
            CONSENT_WEBHOOK_URL="https://crm.example/consent",
            CONSENT_WEBHOOK_SECRET="a-secret-of-sixteen-or-more",
            **changes,
        )

    return make


@pytest.mark.parametrize("batch_rows", [100, 3])
def test_c16_c29_set_based_leaves_what_row_by_row_leaves(postgres_app, tmp_path, batch_rows):
    app = postgres_app()
    set_based, row_by_row = both_ways(app, tmp_path, ROWS, batch_rows)
    assert set_based == row_by_row
    (first, after_first), (second, after_second) = set_based
    assert first[:4] == (len(ROWS), 12, 1, 3) and first[5] == 1
    assert second[:4] == (len(ROWS), 0, 13, 3)
    assert after_second == after_first  # a second run adds nothing
    assert "this number was erased and is suppressed" in first[6]
    state = {(who[0], category): granted for who, category, granted, *_ in after_first["state"]}
    assert state[(WITHDRAWN_LATER, "orders")] is False  # a newer withdrawal is never overridden
    assert state[(WITHDRAWN_BEFORE, "orders")] is True
    assert (ERASED, None) not in after_first["contacts"]
    granted_to_new = [h for h in after_first["webhooks"] if h[0][0] == NEW]
    # Each change of NEW that became its state (not the older row's) is told, in file order.
    assert [(h[2]["category"], h[2]["occurred_at"]) for h in granted_to_new] == [
        ("orders", at(0)),
        ("offers", at(0)),
        ("orders", at(1)),
        ("offers", at(1)),
        ("offers", at(1)),
        ("orders", (T + timedelta(hours=3)).astimezone(GULF).isoformat()),
    ]


def test_c16_double_opt_in_holds_and_confirms_alike(postgres_app, double_opt_in_config, tmp_path):
    app = postgres_app(OPTIN_CONFIG=double_opt_in_config)
    set_based, row_by_row = both_ways(app, tmp_path, ROWS, 100)
    assert set_based == row_by_row
    (first, after), _ = set_based
    assert first[4] == len(after["sent"]) > 0  # confirmations queued, one per row holding offers
    held = {who[0] for who, category, _, _, _, _, confirmed in after["state"] if not confirmed}
    assert CONFIRMED not in held and NEW in held
    told = {who[0] for who, kind, body, _ in after["webhooks"] if body["category"] == "offers"}
    assert told == {CONFIRMED, WITHDRAWN_LATER, WITHDRAWN_BEFORE}  # held grants are not told
    granted = [who[0] for who, kind, body, _ in after["webhooks"] if kind == "consent.granted"]
    assert CONFIRMED in granted and NEW in granted


def test_c27_a_batch_naming_a_user_id_is_recorded_row_by_row_alike(postgres_app, tmp_path):
    app = postgres_app()
    rows = [*ROWS[:4], f'{USER_ID},orders,{at(0)},"{TEXT}"', *ROWS[4:8]]
    set_based, row_by_row = both_ways(app, tmp_path, rows, 2)
    assert set_based == row_by_row
    assert (None, USER_ID) in set_based[0][1]["contacts"]


def test_the_set_based_way_is_what_runs_on_postgresql(postgres_app, tmp_path):
    """The statements of storage.consent_import ran: their staging tables were there."""
    app = postgres_app()
    path = tmp_path / "forms.csv"
    path.write_text("wa_id,categories,collected_at,text\n" + ROWS[3] + "\n", "utf-8")
    seen: list[str] = []

    @event.listens_for(services(app).engine, "commit")
    def staged(connection: Any) -> None:  # before the COMMIT, which drops the staging tables
        raw = connection.connection.dbapi_connection
        seen.append(str(raw.execute("SELECT to_regclass('import_decision')").fetchone()[0]))

    assert import_file(services(app), path, "paper").recorded == 1
    assert "import_decision" in seen
