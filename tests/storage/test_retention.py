"""`flask --app wsgi db prune`: raw events go after EVENT_RETENTION_DAYS, consent evidence stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import storage.retention
from bot.wiring.settings import Settings, SettingsError
from storage.consents import append_decision
from storage.contacts import lock_contact
from storage.db import session_scope
from storage.models import (
    ConsentEvent,
    FailedPayload,
    IdempotencyRecord,
    OtherEvent,
    PreferenceEvent,
    StatusEvent,
)
from storage.types import utcnow
from tests.conftest import MetaWebhook

OLD = timedelta(days=31)  # past the default of 30 days
RECENT = timedelta(days=29)


def count(engine: Engine, model: type[SQLModel]) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def add_raw_events(engine: Engine, age: timedelta, tag: str, how_many: int = 2) -> None:
    received = utcnow() - age
    with session_scope(engine) as session:
        for n in range(how_many):
            session.add(
                StatusEvent(
                    wamid=f"wamid.{tag}{n}",
                    status="delivered",
                    recipient_id="16505551234",
                    meta_timestamp=received,
                    received_at=received,
                )
            )
            session.add(
                OtherEvent(digest=f"{tag}{n}", field="account_update", received_at=received)
            )
            session.add(
                FailedPayload(digest=f"{tag}{n}", problem="bad", body=b"{", received_at=received)
            )
            session.add(
                IdempotencyRecord(
                    key=f"token:{tag}{n}",
                    request_digest="d" * 64,
                    status_code=202,
                    created_at=received,
                )
            )


def prune(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["db", "prune", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_prune_deletes_raw_events_past_the_retention_and_keeps_the_recent_ones(
    app: Flask, engine: Engine
) -> None:
    add_raw_events(engine, OLD, "old")
    add_raw_events(engine, RECENT, "new")

    output = prune(app)

    assert "deleted 2 status events, 2 other events, 2 unparsable bodies" in output
    assert count(engine, StatusEvent) == count(engine, OtherEvent) == 2
    assert count(engine, FailedPayload) == 2
    # Idempotency records live a day: both ages are past it.
    assert "4 idempotency records" in output
    assert count(engine, IdempotencyRecord) == 0
    with Session(engine) as session:
        left = session.exec(select(StatusEvent.wamid)).scalars().all()  # type: ignore[call-overload]
    assert sorted(left) == ["wamid.new0", "wamid.new1"]


def test_a_dry_run_counts_and_deletes_nothing(app: Flask, engine: Engine) -> None:
    add_raw_events(engine, OLD, "old")

    output = prune(app, "--dry-run")

    assert "would delete 2 status events" in output
    assert count(engine, StatusEvent) == 2


def test_consent_evidence_is_never_pruned(app: Flask, engine: Engine, meta: MetaWebhook) -> None:
    a_year_ago = utcnow() - timedelta(days=365)
    assert meta.post_fixture("user_preferences_stop.json").status_code == 200
    with session_scope(engine) as session:
        contact = lock_contact(session, wa_id="16505551234", user_id=None)
        assert contact.id is not None
        append_decision(
            session,
            contact_id=contact.id,
            category="orders",
            granted=True,
            source="web",
            occurred_at=a_year_ago,
            text="Yes to order updates",
            text_version="v1",
            evidence={"form": "checkout"},
        )
        for preference in session.exec(select(PreferenceEvent)).scalars():  # type: ignore[call-overload]
            preference.received_at = a_year_ago
            session.add(preference)

    prune(app)

    assert (count(engine, ConsentEvent), count(engine, PreferenceEvent)) == (1, 1)


def test_a_backlog_larger_than_a_batch_is_deleted_batch_by_batch(
    app: Flask, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.retention, "BATCH", 3)
    add_raw_events(engine, OLD, "old", how_many=10)

    assert "deleted 10 status events" in prune(app)
    assert count(engine, StatusEvent) == 0


def test_the_retention_comes_from_event_retention_days(app_config: dict[str, str]) -> None:
    assert Settings.from_env(app_config).event_retention_days == 30
    assert Settings.from_env({**app_config, "EVENT_RETENTION_DAYS": "7"}).event_retention_days == 7
    for bad in ("0", "-1", "1.5", "a week"):
        with pytest.raises(SettingsError, match="EVENT_RETENTION_DAYS"):
            Settings.from_env({**app_config, "EVENT_RETENTION_DAYS": bad})
