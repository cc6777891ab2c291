"""The jobs that carry what a charger said about a transaction to its session."""

from __future__ import annotations

from datetime import datetime

from plugpay.services.ports.jobs import JobKind, NewJob


def started_job(charger_id: str, pk: int, id_tag: str, at: datetime) -> NewJob:
    """What tells the driver's session that its transaction began: written with
    the transaction, so the session hears of it even across a crash."""
    return NewJob(
        JobKind.TRANSACTION_STARTED,
        f"tx_started:{pk}",
        {"transaction_pk": pk, "id_tag": id_tag, "started_at": at.isoformat()},
        charger_id=charger_id,
    )


def ended_job(charger_id: str, pk: int, id_tag: str | None) -> NewJob:
    return NewJob(
        JobKind.TRANSACTION_ENDED,
        f"tx_ended:{pk}",
        {"transaction_pk": pk, "id_tag": id_tag},
        charger_id=charger_id,
    )
