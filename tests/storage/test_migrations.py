"""The schema comes from Alembic, and the migrations agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage import migrate
from storage.db import make_engine


def test_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_database_is_at_the_newest_revision(database_url):
    engine = make_engine(database_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision(database_url)
    finally:
        engine.dispose()


def test_upgrade_creates_schema_on_an_empty_sqlite_database_and_downgrade_removes_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    from sqlalchemy import inspect

    assert "consent_event" in inspect(engine).get_table_names()
    migrate.downgrade(url, "base")
    assert "consent_event" not in inspect(engine).get_table_names()
    migrate.upgrade(url)
    assert migrate.current_revision(engine) == migrate.head_revision(url)
    engine.dispose()


def test_flask_db_upgrade_command(app_config, tmp_path):
    from bot import create_app

    app_config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    app = create_app(app_config)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert migrate.head_revision(app_config["DATABASE_URL"]) in result.output
