"""Rows of several selects, read together where the database allows (PostgreSQL: one round
trip, storage.libpq_pipeline), and the ORM instances they hold, as a query of the model would
load them: the instance the session already holds for a row's key when there is one (with its
values, as a query leaves them), else a new one, attached as loaded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import class_mapper, make_transient_to_detached
from sqlalchemy.orm.base import instance_state
from sqlmodel import Session, SQLModel

from storage.db import is_postgres
from storage.libpq_pipeline import select_together

M = TypeVar("M", bound=SQLModel)


def rows_of(model: type[SQLModel]) -> Select[Any]:
    """A select of the model's table, every column in the table's order: what loaded() reads."""
    return select(model.__table__)  # type: ignore[attr-defined]


Reads = Sequence[tuple[Select[Any], Mapping[str, object]]]


def select_all(session: Session, reads: Reads) -> list[list[Sequence[Any]]]:
    """Each select's rows: on PostgreSQL all in one round trip, elsewhere one by one."""
    if is_postgres(session.get_bind()):
        return select_together(session.connection(), reads)  # type: ignore[return-value]
    return [list(session.execute(query, dict(params))) for query, params in reads]


def loaded(session: Session, model: type[M], rows: Iterable[Sequence[Any]]) -> list[M]:
    """The model's instances for rows of rows_of(model), in the session."""
    mapper = class_mapper(model)
    table = mapper.local_table
    keys = [mapper.get_property_by_column(column).key for column in table.columns]
    at_key = [list(table.columns).index(column) for column in mapper.primary_key]
    instances: list[M] = []
    for row in rows:
        identity = mapper.identity_key_from_primary_key([row[i] for i in at_key])
        held = session.identity_map.get(identity)
        if held is not None:
            instances.append(held)  # type: ignore[arg-type]
            continue
        instance = built(model, zip(keys, row, strict=True))
        make_transient_to_detached(instance)  # as if loaded: no history, a key of its own
        session.add(instance)  # persistent, unchanged: nothing to flush
        instances.append(instance)
    return instances


def built(model: type[M], values: Iterable[tuple[str, Any]]) -> M:
    """An instance holding these values, made as a load makes one: no constructor, so no
    validation (a tenth of the constructor's time), and nothing for the ORM to write."""
    instance: M = class_mapper(model).class_manager.new_instance()
    instance_state(instance).dict.update(values)
    return instance
