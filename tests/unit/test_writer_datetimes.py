"""The writer's fast SQLite date-time text is exactly what SQLAlchemy would write."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from plugpay.store.sqlite_batch import bind_processor as _bind_processor


def test_fast_datetime_text_matches_sqlalchemy() -> None:
    dialect = sqlite.dialect()
    kind = DateTime(timezone=True)
    fast = _bind_processor(kind, dialect)
    slow = kind._cached_bind_processor(dialect)
    assert fast is not None and slow is not None and fast is not slow
    rng = random.Random(7)
    values: list[object] = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 22, 10, 0, 0, 1),
        datetime(2026, 11, 22, 10, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2))),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        date(2026, 11, 22),
        None,
    ]
    for _ in range(2000):
        values.append(
            datetime(2000, 1, 1, tzinfo=UTC)
            + timedelta(seconds=rng.randrange(0, 10**9), microseconds=rng.randrange(0, 10**6))
        )
    for value in values:
        assert fast(value) == slow(value), value


def test_other_dialects_and_types_keep_their_own_processing() -> None:
    from sqlalchemy import Integer
    from sqlalchemy.dialects import postgresql

    assert _bind_processor(Integer(), sqlite.dialect()) is None
    pg = postgresql.dialect()
    kind = DateTime(timezone=True)
    assert _bind_processor(kind, pg) is kind._cached_bind_processor(pg)
