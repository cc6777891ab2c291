"""RFID cards: linked to a driver's account, issued to a driver group; local lists

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "local_lists",
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_local_lists_charger_id_chargers")
        ),
        sa.PrimaryKeyConstraint("charger_id", name=op.f("pk_local_lists")),
    )
    with op.batch_alter_table("id_tags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("group_name", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("label", sa.String(length=60), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_id_tags_account_id_accounts"), "accounts", ["account_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_id_tags_account_id"), ["account_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("id_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_tags_account_id"))
        batch_op.drop_constraint(batch_op.f("fk_id_tags_account_id_accounts"), type_="foreignkey")
        batch_op.drop_column("label")
        batch_op.drop_column("group_name")
        batch_op.drop_column("account_id")
    op.drop_table("local_lists")
