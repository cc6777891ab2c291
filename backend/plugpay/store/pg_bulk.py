"""PostgreSQL: a batch's rows as one statement over arrays instead of one per row.

``executemany`` makes the server plan and run its statement once per row. The
same statement over ``unnest`` of one array per parameter runs once for the
whole batch: every ``$n::TYPE`` of the single-row statement becomes a column
``v.pn`` of ``unnest($1::TYPE[], ...) AS v(p1, ...)``::

    INSERT INTO t (a, b) VALUES ($1::BIGINT, $2::JSON) ON CONFLICT ...
    INSERT INTO t (a, b) SELECT v.p1, v.p2 FROM unnest($1::BIGINT[], $2::JSON[])
        AS v(p1, p2) ON CONFLICT ...

    UPDATE t SET x=$1::BIGINT WHERE t.id = $2::BIGINT
    UPDATE t SET x=v.p1 FROM unnest($1::BIGINT[], $2::BIGINT[]) AS v(p1, p2)
        WHERE t.id = v.p2

An UPDATE over arrays changes a row once however many array rows match it,
so a batch keeps one row per key of what it updates (the writer does). A
statement this cannot rewrite (a parameter without its cast, a ``RETURNING``)
gives None and runs as ``executemany``.

``combined`` makes the statements of a batch one statement (each a
data-modifying ``WITH``): one round trip, and no BEGIN and COMMIT around it,
as a single statement is a transaction of its own. They write different
tables, so running them side by side, as PostgreSQL does, is safe.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

# A parameter and the cast SQLAlchemy's asyncpg dialect renders after it.
_TYPES = (
    r"TIMESTAMP WITH(?:OUT)? TIME ZONE|TIME WITH(?:OUT)? TIME ZONE|DOUBLE PRECISION"
    r"|CHARACTER VARYING(?:\(\d+\))?|[A-Z][A-Z0-9_]*(?:\(\d+(?:, ?\d+)?\))?"
)
_PARAM = re.compile(rf"\$(\d+)(?:::({_TYPES}))?")
_NUMBER = re.compile(r"\$(\d+)")
# One list of values per parameter of a statement over arrays.
Arrays = list[list[object]]


@functools.cache
def bulk_sql(sql: str) -> str | None:
    """The array form of the single-row ``sql`` (see the module docstring), or None."""
    if " RETURNING " in sql:
        return None
    types: dict[int, str] = {}

    def column(match: re.Match[str]) -> str:
        n, cast = int(match.group(1)), match.group(2)
        if cast is None or types.setdefault(n, cast) != cast:
            raise ValueError(sql)
        return f"v.p{n}"

    try:
        body = _PARAM.sub(column, sql)
    except ValueError:
        return None
    if not types or sorted(types) != list(range(1, len(types) + 1)):
        return None
    arrays = ", ".join(f"${n}::{types[n]}[]" for n in sorted(types))
    names = ", ".join(f"p{n}" for n in sorted(types))
    source = f"unnest({arrays}) AS v({names})"
    if body.startswith("INSERT INTO "):
        head, values, tail = body.partition(" VALUES (")
        if not values:
            return None
        close = _closing(tail)
        if close is None:
            return None
        # Only SQLAlchemy's own compiled text and parameter names are put together.
        return f"{head} SELECT {tail[:close]} FROM {source}{tail[close + 1 :]}"  # noqa: S608
    if body.startswith("UPDATE "):
        head, where, tail = body.partition(" WHERE ")
        if not where or " FROM " in head:
            return None
        return f"{head} FROM {source} WHERE {tail}"
    return None


def combined(parts: Sequence[tuple[str, Arrays]]) -> tuple[str, Arrays]:
    """Statements of ``bulk_sql`` and their arrays as one statement and its arguments."""
    if len(parts) == 1:
        return parts[0][0], list(parts[0][1])
    clauses: list[str] = []
    args: Arrays = []
    for i, (sql, arrays) in enumerate(parts):
        clauses.append(f"w{i} AS ({_renumbered(sql, len(args))})")
        args.extend(arrays)
    return f"WITH {', '.join(clauses)} SELECT 1", args


def _renumbered(sql: str, offset: int) -> str:
    return _NUMBER.sub(lambda m: f"${int(m.group(1)) + offset}", sql)


def columns(params: Sequence[Sequence[object]]) -> Arrays:
    """Rows of parameters as one list per parameter (the arrays of ``bulk_sql``)."""
    return [list(column) for column in zip(*params, strict=True)]


def _closing(text: str) -> int | None:
    """Where the parenthesis open before ``text`` closes."""
    depth = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return i
            depth -= 1
    return None
