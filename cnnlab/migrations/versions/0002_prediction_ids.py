"""Pictures keyed by their prediction's own id, unique with their position: feedback
labels exactly one row.

Rows of the first revision keep their request id as their prediction id; where two
requests shared one (a client's reused X-Request-ID, one trace), the later rows get
``<id>-<row>`` so the key is unique and no picture or label is lost.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("captures") as batch:
        batch.drop_index("ix_captures_request")
        batch.alter_column("request_id", new_column_name="prediction_id")
    op.execute("UPDATE captures SET prediction_id = substr(prediction_id, 1, 40) || '-' || id "
               "WHERE id NOT IN (SELECT MIN(id) FROM captures "
               "GROUP BY prediction_id, position)")
    op.create_index("ux_captures_prediction", "captures", ["prediction_id", "position"],
                    unique=True)
    op.create_index("ix_captures_model_label", "captures", ["model", "label"])


def downgrade() -> None:
    op.drop_index("ix_captures_model_label", "captures")
    op.drop_index("ux_captures_prediction", "captures")
    with op.batch_alter_table("captures") as batch:
        batch.alter_column("prediction_id", new_column_name="request_id")
        batch.create_index("ix_captures_request", ["request_id", "position"])
