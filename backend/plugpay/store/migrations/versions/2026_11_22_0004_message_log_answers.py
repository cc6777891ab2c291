"""message log: a CALL from a charger and our answer in one row

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ocpp_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ocpp_messages", schema=None) as batch_op:
        batch_op.drop_column("answered_at")
        batch_op.drop_column("answer")
