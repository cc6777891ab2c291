"""Jobs of a charger found by charger, state and due time

A charger's connection wakes its waiting jobs. On charger id alone SQLite's
planner chose the (state, run_at) index instead and read every pending job of
every charger (thousands, once each charger has a local-list job).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_charger_id")
        batch_op.create_index(
            "ix_jobs_charger_state_run_at", ["charger_id", "state", "run_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_charger_state_run_at")
        batch_op.create_index("ix_jobs_charger_id", ["charger_id"], unique=False)
