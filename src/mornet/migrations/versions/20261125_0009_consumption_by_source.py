"""Telemetry: hourly use kept per source (the household's main meter, or its plugs), so that a
resource with a main meter is billed from the meter alone

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "telemetry_consumption_hourly"
PK = "pk_telemetry_consumption_hourly"


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=5), nullable=False, server_default="plug")
        )
    # Hours so far were summed over every device. Where a household has entered main-meter
    # indexes for a resource, its hours are counted as the meter's (the closest reading of
    # what was stored; before this, a household rarely had both for one resource).
    op.execute(
        "UPDATE telemetry_consumption_hourly SET source = 'meter' WHERE EXISTS ("
        "SELECT 1 FROM telemetry_device_cursors c "
        "WHERE c.household_id = telemetry_consumption_hourly.household_id "
        "AND c.device_id = 'meter-' || telemetry_consumption_hourly.resource)"
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_constraint(PK, type_="primary")
        batch_op.create_primary_key(PK, ["household_id", "resource", "source", "hour_start"])


def downgrade() -> None:
    op.execute(
        "DELETE FROM telemetry_consumption_hourly WHERE source = 'plug' AND EXISTS ("
        "SELECT 1 FROM telemetry_consumption_hourly m WHERE m.source = 'meter' "
        "AND m.household_id = telemetry_consumption_hourly.household_id "
        "AND m.resource = telemetry_consumption_hourly.resource "
        "AND m.hour_start = telemetry_consumption_hourly.hour_start)"
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_constraint(PK, type_="primary")
        batch_op.create_primary_key(PK, ["household_id", "resource", "hour_start"])
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_column("source")
