"""Statements compiled once for the writer's programs (store/sqlite_batch.py ``Prepared``)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from plugpay.store import tables as t
from plugpay.store.sqlite_batch import Prepared

_J = t.jobs


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.asyncpg.dialect()])
def test_an_expanding_in_is_refused_when_prepared(dialect: object) -> None:
    statement = select(_J.c.id).where(_J.c.state.in_(("pending", "running")))
    with pytest.raises(ValueError, match="expanding parameters"):
        Prepared.of(statement, [], dialect)


def test_literals_in_a_statement_are_its_parameter_defaults() -> None:
    statement = (
        update(_J)
        .where(_J.c.id == bindparam("job_id"), _J.c.state == "running")
        .values(attempts=_J.c.attempts + 1)
    )
    prepared = Prepared.of(statement, ["job_id"], sqlite.dialect())
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT, attempts INTEGER)")
    conn.executemany("INSERT INTO jobs VALUES (?, ?, 0)", [(1, "running"), (2, "pending")])
    changed = conn.execute(prepared.sql, prepared.params([{"job_id": 1}])[0]).rowcount
    assert changed == 1
    assert conn.execute("SELECT id, attempts FROM jobs ORDER BY id").fetchall() == [(1, 1), (2, 0)]
    assert conn.execute(prepared.sql, prepared.params([{"job_id": 2}])[0]).rowcount == 0
