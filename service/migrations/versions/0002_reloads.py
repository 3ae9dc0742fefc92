"""Hot reloads, so that every worker and replica sharing the database serves the same model.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "reloads",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("model_dir", sa.String(1000), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("configured_dir", sa.String(1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reloads")
