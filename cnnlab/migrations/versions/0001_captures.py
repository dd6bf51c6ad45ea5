"""The first capture table: pictures keyed by the request id of their answer.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("predicted", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("ood_score", sa.Float),
        sa.Column("in_distribution", sa.Boolean),
        sa.Column("original", sa.LargeBinary, nullable=False),
        sa.Column("seen_png", sa.LargeBinary, nullable=False),
        sa.Column("label", sa.Integer),
        sa.Column("labelled", sa.Float),
    )
    op.create_index("ix_captures_request", "captures", ["request_id", "position"])
    op.create_index("ix_captures_model", "captures", ["model", "version"])
    op.create_index("ix_captures_created", "captures", ["created"])


def downgrade() -> None:
    op.drop_table("captures")
