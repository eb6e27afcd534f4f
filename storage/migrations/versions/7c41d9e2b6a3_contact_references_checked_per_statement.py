"""contact references of the ledger and current consent checked per statement; indexes of the
contact identifiers a contact may lack made partial

Revision ID: 7c41d9e2b6a3
Revises: efae7f5655fd
Create Date: 2026-11-30 16:40:00.000000

A bulk import writes a million contacts, and a ledger row and a current-state row per category.
Two costs of that were the schema's, not the import's:

- The foreign keys of consent_event and consent on contact were checked row by row: a query
  and a FOR KEY SHARE lock (a WAL record) per row, over half of each insert's time. On
  PostgreSQL statement-level triggers now check every row a statement writes in one query, and
  lock only the contacts this transaction does not hold already (every writer locks or creates
  its contact first, so they rarely lock anything). Deleting a contact still removes its rows,
  and a row naming a missing contact is still refused, with the foreign key's error code. SQLite
  gets row-level triggers with the same effects.
- The indexes on contact.user_id, parent_user_id and last_inbound_at held an entry for every
  contact without one. They now hold only contacts that have the value: equality lookups and
  uniqueness are unchanged (NULLs never conflicted), and a contact created by number adds
  nothing to them. (Nothing reads last_inbound_at's index: the console's order, newest
  inbound first with NULLs last, sorts; it is kept, partial, for queries of recent contacts.)

A SQLite table rebuilt by a batch migration loses its triggers: a later migration that
rebuilds contact, consent_event or consent must create them again (see SQLITE_TRIGGERS).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c41d9e2b6a3"
down_revision: str | None = "efae7f5655fd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILDREN = ("consent_event", "consent")
PARTIAL = (("user_id", True), ("parent_user_id", False), ("last_inbound_at", False))
# SQLite's foreign keys have no name: batch mode finds them by this convention.
SQLITE_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}

POSTGRES_FUNCTIONS = """
CREATE FUNCTION contact_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- This transaction's id as xmin and xmax hold it (32 bits, no epoch).
    mine xid := (pg_current_xact_id()::text::bigint % 4294967296)::text::xid;
    ids bigint[];
    missing bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- As a foreign key: only a row moved to another contact is checked.
        SELECT array_agg(contact_id) INTO ids
        FROM (SELECT contact_id FROM referencing EXCEPT SELECT contact_id FROM previous) moved;
    ELSE
        SELECT array_agg(DISTINCT contact_id) INTO ids FROM referencing;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    -- Locked as a foreign key locks them, so that no deletion removes them before this
    -- transaction ends; not those it created, or holds a lock on already.
    PERFORM FROM contact c
    WHERE c.id = ANY(ids) AND c.xmin <> mine AND c.xmax <> mine
    ORDER BY c.id FOR KEY SHARE OF c;
    SELECT n INTO missing FROM unnest(ids) AS n
    WHERE NOT EXISTS (SELECT FROM contact c WHERE c.id = n) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "%" violates its reference to contact',
            TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                DETAIL = format('Key (contact_id)=(%s) is not present in table "contact".',
                    missing);
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION contact_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM consent_event WHERE contact_id IN (SELECT id FROM removed);
    DELETE FROM consent WHERE contact_id IN (SELECT id FROM removed);
    RETURN NULL;
END
$$;
CREATE FUNCTION contact_id_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM consent_event WHERE contact_id = OLD.id)
        OR EXISTS (SELECT FROM consent WHERE contact_id = OLD.id) THEN
        RAISE EXCEPTION 'contact % is still referenced', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_removed AFTER DELETE ON contact
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION contact_removed();
CREATE TRIGGER contact_id_kept AFTER UPDATE OF id ON contact
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION contact_id_kept();
"""
POSTGRES_CHILD_TRIGGERS = """
CREATE TRIGGER {table}_contact_inserted AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS referencing
    FOR EACH STATEMENT EXECUTE FUNCTION contact_referenced();
CREATE TRIGGER {table}_contact_updated AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS previous NEW TABLE AS referencing
    FOR EACH STATEMENT EXECUTE FUNCTION contact_referenced();
"""
SQLITE_MISSING = (
    "WHEN NOT EXISTS (SELECT 1 FROM contact WHERE id = NEW.contact_id)"
    " BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END"
)
SQLITE_TRIGGERS = (
    *(
        f"CREATE TRIGGER {table}_contact_inserted BEFORE INSERT ON {table} {SQLITE_MISSING}"
        for table in CHILDREN
    ),
    *(
        f"CREATE TRIGGER {table}_contact_updated BEFORE UPDATE OF contact_id ON {table}"
        f" {SQLITE_MISSING}"
        for table in CHILDREN
    ),
    """CREATE TRIGGER contact_removed AFTER DELETE ON contact BEGIN
        DELETE FROM consent_event WHERE contact_id = OLD.id;
        DELETE FROM consent WHERE contact_id = OLD.id;
    END""",
    """CREATE TRIGGER contact_id_kept BEFORE UPDATE OF id ON contact
    WHEN OLD.id IS NOT NEW.id AND (
        EXISTS (SELECT 1 FROM consent_event WHERE contact_id = OLD.id)
        OR EXISTS (SELECT 1 FROM consent WHERE contact_id = OLD.id))
    BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END""",
)
SQLITE_TRIGGER_NAMES = (
    *(f"{table}_contact_{event}" for table in CHILDREN for event in ("inserted", "updated")),
    "contact_removed",
    "contact_id_kept",
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _indexes(partial: bool) -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        for column, unique in PARTIAL:
            name = f"ix_contact_{column}"
            batch_op.drop_index(name)
            where = sa.text(f"{column} IS NOT NULL") if partial else None
            batch_op.create_index(
                name, [column], unique=unique, postgresql_where=where, sqlite_where=where
            )


def upgrade() -> None:
    _indexes(partial=True)
    if _postgres():
        for table in CHILDREN:
            op.drop_constraint(f"{table}_contact_id_fkey", table, type_="foreignkey")
        op.execute(POSTGRES_FUNCTIONS)
        for table in CHILDREN:
            op.execute(POSTGRES_CHILD_TRIGGERS.format(table=table))
        return
    for table in CHILDREN:
        with op.batch_alter_table(table, naming_convention=SQLITE_NAMING) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_contact_id_contact", type_="foreignkey")
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if _postgres():
        for table in CHILDREN:
            for event in ("inserted", "updated"):
                op.execute(f"DROP TRIGGER {table}_contact_{event} ON {table}")
        op.execute("DROP TRIGGER contact_removed ON contact")
        op.execute("DROP TRIGGER contact_id_kept ON contact")
        for function in ("contact_referenced", "contact_removed", "contact_id_kept"):
            op.execute(f"DROP FUNCTION {function}()")
        for table in CHILDREN:
            op.create_foreign_key(
                f"{table}_contact_id_fkey",
                table,
                "contact",
                ["contact_id"],
                ["id"],
                ondelete="CASCADE",
            )
    else:
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
        for table in CHILDREN:
            with op.batch_alter_table(table, naming_convention=SQLITE_NAMING) as batch_op:
                batch_op.create_foreign_key(
                    f"fk_{table}_contact_id_contact",
                    "contact",
                    ["contact_id"],
                    ["id"],
                    ondelete="CASCADE",
                )
    _indexes(partial=False)
