"""Feedback (agent corrections) and the prediction log.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("post_id", sa.String(128), index=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("intent", sa.String(40), nullable=False),
        sa.Column("also", sa.String(400), nullable=False),
        sa.Column("urgency", sa.Integer),
        sa.Column("predicted_intent", sa.String(40)),
        sa.Column("predicted_urgency", sa.Integer),
        sa.Column("agent", sa.String(128)),
        sa.Column("note", sa.Text),
        sa.Column("model_version", sa.String(128)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "predictions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("post_id", sa.String(128)),
        sa.Column("intent", sa.String(40), nullable=False),
        sa.Column("urgency", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("predictions")
    op.drop_table("feedback")
