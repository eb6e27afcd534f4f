"""C16: `flask --app wsgi consent import FILE.csv --source ...` records consent collected on paper,
in IVR logs, by SMS or e-mail as POST /api/v1/consents would; rejected rows go to
FILE.rejects.csv with the reason, and importing the same file again records nothing twice."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from bot.wiring.services import services
from storage.models import Consent, ConsentEvent, Contact, Message
from storage.suppression import suppress
from tests.api.conftest import CONSENT_TEXT, OTHER_WA_ID, WA_ID
from tests.conftest import Api

HEADER = "wa_id,categories,collected_at,text\n"
WHEN = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0).isoformat()
FUTURE = (datetime.now(UTC) + timedelta(days=3)).isoformat()


def write(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "forms.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + "".join(rows), encoding="utf-8")
    return path


def run(app, path: Path, source: str = "paper", *extra: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(
        args=["consent", "import", str(path), "--source", source, *extra]
    )


def count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


MIXED = [
    f'"+1 650-555-1234",orders;offers,{WHEN},"{CONSENT_TEXT}"\n',  # good, in a usual spelling
    f"971501234567,orders,{WHEN},Yes to order updates\n",  # good
    f"12,orders,{WHEN},too short a number\n",  # bad number
    f"447911123456,cakes,{WHEN},unknown category\n",  # unknown category
    f"447911123457,orders,{FUTURE},collected tomorrow\n",  # in the future
    f"447911123458,orders,{WHEN},\n",  # no text
    f"447911123459,orders,{WHEN}\n",  # a column missing
]


def test_c16_a_mixed_file_exits_1_with_the_rejects_and_adds_nothing_on_a_second_run(
    app, engine, tmp_path
):
    path = write(tmp_path, MIXED)
    first = run(app, path)
    assert first.exit_code == 1, first.output
    assert (
        "7 rows" in first.output and "2 recorded" in first.output and "5 rejected" in first.output
    )
    rejects = tmp_path / "forms.rejects.csv"
    assert f"rejected rows and why: {rejects}" in first.output
    with rejects.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["line"] for r in rows] == ["4", "5", "6", "7", "8"]
    reasons = [r["reason"] for r in rows]
    assert reasons[0].startswith("wa_id:")
    assert reasons[1].startswith("categories[0]: unknown category 'cakes'")
    assert reasons[2] == "collected_at: is in the future"
    assert reasons[3].startswith("text:")
    assert reasons[4] == "expected 4 columns, found 3"
    assert rows[0]["wa_id"] == "12"  # the row as it was read, to fix and import again
    ledger = count(engine, ConsentEvent)
    assert ledger == 3  # orders and offers for the first row, orders for the second

    second = run(app, path)
    assert second.exit_code == 1
    assert "0 recorded, 2 recorded before, 5 rejected" in second.output
    assert count(engine, ConsentEvent) == ledger
    assert count(engine, Contact) == 2


def test_c16_rows_are_recorded_as_the_api_records_them(app, engine, tmp_path):
    path = write(tmp_path, MIXED[:2])
    result = run(app, path, "ivr")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "forms.rejects.csv").exists()
    api = Api(app.test_client())
    consents = api.get(f"/contacts/{WA_ID}").json["consents"]
    assert {c: (v["granted"], v["source"]) for c, v in consents.items()} == {
        "orders": (True, "ivr"),
        "offers": (True, "ivr"),
    }
    [event, _] = api.get(f"/contacts/{WA_ID}/consent-events").json["events"]
    assert event["text"] == CONSENT_TEXT
    assert datetime.fromisoformat(event["occurred_at"]) == datetime.fromisoformat(WHEN)
    assert event["evidence"] == {"import_file": "forms.csv", "line": 2}
    assert api.get(f"/contacts/{OTHER_WA_ID}").json["consents"]["orders"]["granted"]


def test_c18_an_erased_number_is_rejected_as_the_api_refuses_it(app, engine, tmp_path):
    with Session(engine) as session:
        suppress(session, key=services(app).settings.suppression_key, wa_id=WA_ID, reason="erasure")
        session.commit()
    result = run(app, write(tmp_path, MIXED[:2]))
    assert result.exit_code == 1
    rejects = (tmp_path / "forms.rejects.csv").read_text(encoding="utf-8")
    assert "this number was erased and is suppressed" in rejects
    assert count(engine, Contact) == 1


def test_a_clean_run_removes_an_old_rejects_file(app, tmp_path):
    (tmp_path / "forms.rejects.csv").write_text("stale", encoding="utf-8")
    assert run(app, write(tmp_path, MIXED[:1])).exit_code == 0
    assert not (tmp_path / "forms.rejects.csv").exists()


def test_duplicates_within_one_file_are_recorded_once(app, engine, tmp_path):
    result = run(app, write(tmp_path, [MIXED[1], MIXED[1]]), "sms", "--batch-size", "1")
    assert result.exit_code == 0
    assert "1 recorded, 1 recorded before" in result.output
    assert count(engine, ConsentEvent) == 1


def test_batches_and_an_earlier_partial_run_leave_every_row_recorded_once(app, engine, tmp_path):
    rows = [f"97150123{n:04d},orders,{WHEN},Paper form {n}\n" for n in range(25)]
    assert run(app, write(tmp_path, rows[:10], name="part.csv"), "paper").exit_code == 0
    result = run(app, write(tmp_path, rows), "paper", "--batch-size", "7")
    assert result.exit_code == 0, result.output
    assert "15 recorded, 10 recorded before" in result.output
    assert count(engine, ConsentEvent) == 25
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Consent)).one() == 25


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        (b"number,categories,when,text\n1,orders,x,y\n", "missing wa_id, collected_at"),
        (b"wa_id,categories,collected_at,text\n\xff\xfe,orders,x,y\n", "not UTF-8"),
    ],
)
def test_an_unusable_file_exits_2_and_says_why(app, engine, tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = run(app, path)
    assert result.exit_code == 2
    assert problem in result.output
    assert count(engine, ConsentEvent) == 0


def test_a_missing_file_or_source_exits_2(app, tmp_path):
    assert run(app, tmp_path / "absent.csv").exit_code == 2
    result = run(app, write(tmp_path, MIXED[:1]), "ad")
    assert result.exit_code == 2  # click refuses the choice: an ad is never consent


def test_double_opt_in_holds_imported_marketing_consent_and_queues_the_template(
    make_app, double_opt_in_config, engine, tmp_path
):
    app = make_app(OPTIN_CONFIG=double_opt_in_config)
    result = run(app, write(tmp_path, MIXED[:1]), "paper")
    assert result.exit_code == 0, result.output
    assert "1 double opt-in confirmations queued" in result.output
    consents = Api(app.test_client()).get(f"/contacts/{WA_ID}").json["consents"]
    assert consents["offers"]["granted"] is True  # recorded, but not sendable until confirmed
    with Session(engine) as session:
        purposes = session.exec(select(Message.purpose)).all()
    assert purposes == ["double_opt_in"]
