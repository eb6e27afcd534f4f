"""Command-line entry points: `flask --app wsgi db ...`, `chat`, `outbox ...`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from bot.services import services
from storage import migrate

db_cli = AppGroup("db", help="Create or upgrade the database schema (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create the schema on an empty database, or upgrade an existing one."""
    migrate.upgrade(services().settings.database_url, revision)
    click.echo(f"database at {migrate.current_revision(services().engine)}")


@db_cli.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Step the schema back to REVISION (use with care: data in dropped tables is lost)."""
    migrate.downgrade(services().settings.database_url, revision)
    click.echo(f"database at {migrate.current_revision(services().engine)}")


@db_cli.command("current")
@with_appcontext
def db_current() -> None:
    """Show the schema revision of the database and the newest one available."""
    url = services().settings.database_url
    click.echo(f"database: {migrate.current_revision(services().engine)}")
    click.echo(f"newest:   {migrate.head_revision(url)}")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    migrate.revision(services().settings.database_url, message)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
