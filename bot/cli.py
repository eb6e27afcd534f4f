"""Command-line entry points: `flask --app wsgi db ...`, `chat`, `outbox ...`, `flows ...`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from bot.importing import BATCH_ROWS, IMPORT_SOURCES, SET_BATCH_ROWS, ImportReport
from bot.wiring.services import services
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


@db_cli.command("prune")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@with_appcontext
def db_prune(dry_run: bool) -> None:
    """Delete raw events older than EVENT_RETENTION_DAYS and day-old idempotency records.

    Meta's status events, unknown events and unparsable bodies hold phone numbers and grow with
    every message sent; consent evidence (the ledger, preference events, messages) is kept.
    Run it daily, from cron or a timer.
    """
    from datetime import timedelta

    from bot.api.idempotency import RETENTION
    from storage.retention import prune
    from storage.types import utcnow

    app_services = services()
    now = utcnow()
    events_before = now - timedelta(days=app_services.settings.event_retention_days)
    pruned = prune(
        app_services.engine,
        events_before=events_before,
        idempotency_before=now - RETENTION,
        dry_run=dry_run,
    )
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {pruned.status_events:,} status events, {pruned.other_events:,} other events, "
        f"{pruned.failed_payloads:,} unparsable bodies (received before "
        f"{events_before.isoformat(timespec='seconds')}), and "
        f"{pruned.idempotency_records:,} idempotency records older than a day"
    )


MAX_CONCURRENCY = 64  # the connections bot.make_transport pools per process

outbox_cli = AppGroup("outbox", help="The outbox of messages waiting to be sent.")


@outbox_cli.command("work")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    type=click.IntRange(1, MAX_CONCURRENCY),
    help="Parallel Graph API calls (each keeps a pooled connection). To reach a send rate R "
    "with Meta answering in L seconds, the dispatchers together need about R x L.",
)
@click.option(
    "--lease-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="How long a claimed row is held before another dispatcher may take it over "
    "(a dispatcher that died is replaced after this long).",
)
@click.option(
    "--poll-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="How often an idle dispatcher looks for rows that came due, such as retries. On "
    "PostgreSQL newly queued rows wake it at once.",
)
@with_appcontext
def outbox_work(
    batch_size: int, concurrency: int, lease_seconds: float, poll_seconds: float
) -> None:
    """Run a dispatcher in this process until SIGTERM or Ctrl-C.

    Any number may run on PostgreSQL; on SQLite one sends at a time and the others stand by.
    """
    import signal
    import threading
    from datetime import timedelta

    from storage.wakeup import listen

    stop, wake = threading.Event(), threading.Event()
    dispatcher = services().dispatcher(
        batch_size=batch_size,
        concurrency=concurrency,
        lease=timedelta(seconds=lease_seconds),
        poll_seconds=poll_seconds,
    )
    # The dispatcher runs in a thread and this one only waits for the signals. Setting the
    # Event from a signal handler could deadlock against a wait on it in the same thread.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # inherited by every thread started now
    listening = threading.Event()
    listener = threading.Thread(
        target=listen,
        args=(services().engine, wake, stop, listening),
        name="outbox-wakeups",
        daemon=True,
    )
    listener.start()
    if services().engine.dialect.name == "postgresql" and not listening.wait(5):
        click.echo("not woken by new rows yet (database unreachable?); polling", err=True)
    worker = threading.Thread(target=dispatcher.run, args=(stop, wake), name="outbox-dispatcher")
    worker.start()
    # Consent webhooks to the business go out from the same workers, when configured.
    webhooks = services().start_webhook_thread(stop)
    click.echo(f"dispatcher {dispatcher.worker} running; Ctrl-C to stop")
    while worker.is_alive() and signal.sigtimedwait(signals, 0.5) is None:
        pass
    stop.set()
    wake.set()  # out of its idle wait at once
    worker.join()
    if webhooks is not None:
        webhooks.join()
    click.echo(f"dispatcher stopped: {dispatcher.stats}")


@outbox_cli.command("status")
@with_appcontext
def outbox_status() -> None:
    """How many rows wait, by priority and state, and whether dispatching is paused."""
    from sqlmodel import Session

    from bot.outbound.pause import paused_reason
    from storage.outbox import PRIORITY_ANSWER, backlog
    from storage.types import utcnow

    now = utcnow()
    with Session(services().engine) as session:
        waiting = backlog(session, now=now)
    click.echo(f"pending: {sum(b.rows for b in waiting)}")
    for b in sorted(waiting, key=lambda b: (b.priority, b.state)):
        kind = "answers" if b.priority == PRIORITY_ANSWER else "business sends"
        line = f"  {kind}, {b.state}: {b.rows}"
        if b.state == "due" and b.oldest_due_at is not None:
            line += f" (oldest due {max(0.0, (now - b.oldest_due_at).total_seconds()):.0f}s ago)"
        click.echo(line)

    reason = paused_reason(services().engine, services().settings.access_token)
    click.echo(f"paused: {reason}" if reason else "dispatching: yes")


@outbox_cli.command("resume")
@with_appcontext
def outbox_resume() -> None:
    """Lift a pause caused by an expired token (after configuring a new one)."""
    from bot.outbound.pause import resume

    click.echo("resumed" if resume(services().engine) else "was not paused")


@click.command("chat")
@click.option("--wa-id", default="15550001234", show_default=True, help="Your WhatsApp number.")
@click.option("--name", default="Terminal Customer", show_default=True)
@with_appcontext
def chat(wa_id: str, name: str) -> None:
    """Be a customer: chat with the bot in the terminal, without Meta."""
    from flask import current_app

    from bot.dev.chat import ChatSession

    session = ChatSession(current_app._get_current_object(), wa_id=wa_id, name=name)  # type: ignore[attr-defined]
    click.echo(
        f"You are {name} ({wa_id}). Type a message; a number picks a button. "
        "/image sends a picture, /ad <text> writes as if from an ad, "
        "/form <ids> answers the preferences form with those boxes ticked, /quit leaves."
    )
    while True:
        try:
            line = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
        except (EOFError, click.Abort):
            break
        if not line.strip():
            continue
        if line.strip() == "/quit":
            break
        if line.strip() == "/image":
            replies = session.send_image()
        elif line.startswith("/ad "):
            replies = session.say(line[4:], from_ad=True)
        elif line.split()[0] == "/form":
            if session.form is None:
                click.echo("   (no form shown yet: send PREFERENCES)")
                continue
            replies = session.answer_form(line[len("/form") :].replace(",", " ").split())
        else:
            replies = session.say(line)
        if not replies:
            click.echo("   (no reply)")
        for reply in replies:
            lines = "\n".join(reply.lines).splitlines()
            click.echo("\n".join(["bot> " + lines[0]] + ["     " + line for line in lines[1:]]))


consent_cli = AppGroup("consent", help="Consent collected outside WhatsApp.")


@consent_cli.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--source",
    required=True,
    type=click.Choice(IMPORT_SOURCES),
    help="Where the consent in the file was collected.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 20_000),
    help=f"Rows per transaction [default: {SET_BATCH_ROWS} on PostgreSQL, {BATCH_ROWS} on SQLite]",
)
@with_appcontext
def consent_import(file: Path, source: str, batch_size: int | None) -> None:
    """Record every row of FILE (header wa_id,categories,collected_at,text; categories
    separated by ;) as POST /api/v1/consents would. Rejected rows go to FILE.rejects.csv with
    the reason. Exit 0: all recorded; 1: some rejected; 2: the file cannot be used.
    Running it again records nothing twice."""
    from bot.importing import UnusableFile, import_file

    size = file.stat().st_size if file.is_file() else 0
    with click.progressbar(
        length=max(size, 1),
        label=f"importing {file.name}",
        show_eta=True,
        show_percent=True,
        item_show_func=lambda rate: rate,
        file=sys.stderr,
    ) as bar:

        def progress(position: int, report: ImportReport) -> None:
            rate = report.rows / report.seconds if report.seconds else 0.0
            bar.update(position - bar.pos, f"{report.rows:,} rows, {rate:,.0f} rows/s")

        try:
            report = import_file(services(), file, source, batch_rows=batch_size, progress=progress)
        except UnusableFile as exc:
            click.echo(f"\nnot imported: {exc}", err=True)
            sys.exit(2)
    rate = report.rows / report.seconds if report.seconds else 0.0
    click.echo(
        f"{report.rows:,} rows in {report.seconds:.1f} s ({rate:,.0f} rows/s): "
        f"{report.recorded:,} recorded, {report.already:,} recorded before, "
        f"{report.rejected:,} rejected"
        + (
            f", {report.confirmations:,} double opt-in confirmations queued"
            if report.confirmations
            else ""
        )
    )
    if report.rejects_path:
        click.echo(f"rejected rows and why: {report.rejects_path}")
    if report.stopped:
        click.echo(f"stopped, the rest of the file is unusable: {report.stopped}", err=True)
    sys.exit(report.exit_code)


flows_cli = AppGroup("flows", help="The WhatsApp Flows the bot sends (PREFERENCES as a form).")


@flows_cli.command("export")
@click.option("--language", help="Language of the example texts (default: the first configured).")
@with_appcontext
def flows_export(language: str | None) -> None:
    """Print the preferences form's Flow JSON, to publish in WhatsApp Manager.

    Its texts come with each message, in the contact's language: the JSON is the same for every
    language, and its examples only show WhatsApp Manager's preview something real.
    """
    import json

    from bot.graph.forms import flow_json
    from flows.render import render_preferences_form
    from flows.signals import usable_language

    catalog = services().catalog
    language = usable_language(catalog, language)
    example = render_preferences_form(catalog, language, frozenset(catalog.category_ids[:1]))
    assert example.form is not None
    document = flow_json(example.form, title=catalog.company.name)
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


def init_app(app: Flask) -> None:
    from bot.console.auth import console_cli

    app.cli.add_command(chat)
    app.cli.add_command(consent_cli)
    app.cli.add_command(console_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(flows_cli)
    app.cli.add_command(outbox_cli)
