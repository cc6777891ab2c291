"""A batch's single-row statements rewritten over arrays (PostgreSQL), and joined."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import asyncpg

from plugpay.store import tables as t
from plugpay.store.pg_bulk import bulk_sql, columns, combined
from plugpay.store.readings import merge_statement
from plugpay.store.sqlite_batch import latest_statement

DIALECT = asyncpg.dialect()


def compiled(statement: object, keys: list[str]) -> str:
    return str(statement.compile(dialect=DIALECT, column_keys=keys, for_executemany=True))  # type: ignore[attr-defined]


def test_an_insert_selects_from_one_array_per_column() -> None:
    sql = compiled(postgresql.insert(t.ocpp_messages), ["charger_id", "frame", "at"])
    assert bulk_sql(sql) == (
        "INSERT INTO ocpp_messages (charger_id, frame, at) SELECT v.p1, v.p2, v.p3 FROM "
        "unnest($1::VARCHAR[], $2::VARCHAR[], $3::TIMESTAMP WITH TIME ZONE[]) AS v(p1, p2, p3)"
    )


def test_an_upsert_keeps_its_conflict_clause() -> None:
    keys = ["transaction_id", "charger_id", "connector_id", "at", "energy_wh", "flag"]
    sql = compiled(merge_statement(postgresql), keys)
    bulk = bulk_sql(sql)
    assert bulk is not None
    assert " FROM unnest($1::BIGINT[], " in bulk
    assert "ON CONFLICT (transaction_id, at) DO UPDATE SET" in bulk
    assert "$" not in bulk.partition(" ON CONFLICT ")[2]  # every parameter is now v.pN


def test_an_update_joins_the_arrays_and_reads_every_parameter_from_them() -> None:
    sql = compiled(latest_statement(), ["pk", "at", "wh"])
    bulk = bulk_sql(sql)
    assert bulk is not None
    head, _, where = bulk.partition(" WHERE ")
    assert head.startswith("UPDATE transactions SET ")
    assert " FROM unnest(" in head
    assert "$" not in where and "v.p" in where


def test_what_cannot_be_rewritten_is_left_to_executemany() -> None:
    assert bulk_sql("INSERT INTO x (a) VALUES ($1)") is None  # no cast: no array type
    assert bulk_sql("INSERT INTO x (a) VALUES ($1::INTEGER) RETURNING x.id") is None
    assert bulk_sql("DELETE FROM x WHERE x.a = $1::INTEGER") is None
    assert bulk_sql("UPDATE x SET a=$1::INTEGER") is None  # no WHERE
    # One parameter cast two ways is no column of one type.
    assert bulk_sql("UPDATE x SET a=$1::INTEGER WHERE x.b = $1::BIGINT") is None


def test_statements_joined_number_their_parameters_on() -> None:
    one = bulk_sql("INSERT INTO a (x, y) VALUES ($1::INTEGER, $2::JSON)")
    two = bulk_sql("UPDATE b SET z=$1::BIGINT WHERE b.id = $2::BIGINT")
    assert one is not None and two is not None
    sql, args = combined([(one, [[1, 2], ["{}", "[]"]]), (two, [[7], [8]])])
    assert sql.startswith("WITH w0 AS (INSERT INTO a ")
    assert "unnest($3::BIGINT[], $4::BIGINT[])" in sql
    assert sql.endswith(" SELECT 1")
    assert args == [[1, 2], ["{}", "[]"], [7], [8]]
    assert combined([(one, [[1], ["{}"]])]) == (one, [[1], ["{}"]])


def test_rows_become_one_list_per_parameter() -> None:
    assert columns([(1, "a"), (2, "b"), (3, "c")]) == [[1, 2, 3], ["a", "b", "c"]]
