"""foundation: users, regions with sample tariffs, households, edge agents

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Demonstration tariffs: rounded, plausible 2025 residential prices, NOT official figures.
# Two periods each, because tariffs in Russia are indexed every 1 July.
SAMPLE_REGIONS = [
    # code, name, zone, {valid_from (local date): (E RUB/kWh, H RUB/kWh, W RUB/m3)}
    (
        "RU-MOW",
        "Moscow",
        "Europe/Moscow",
        {
            "2025-01-01": ("6.9900", "2.6500", "55.6000"),
            "2025-07-01": ("8.1600", "3.0800", "63.9300"),
        },
    ),
    (
        "RU-SPE",
        "Saint Petersburg",
        "Europe/Moscow",
        {
            "2025-01-01": ("6.1700", "2.3800", "44.1000"),
            "2025-07-01": ("6.9100", "2.6700", "51.3800"),
        },
    ),
    (
        "RU-NVS",
        "Novosibirsk Oblast",
        "Asia/Novosibirsk",
        {
            "2025-01-01": ("5.0300", "1.9400", "38.1500"),
            "2025-07-01": ("5.7400", "2.2200", "44.0000"),
        },
    ),
    (
        "RU-SVE",
        "Sverdlovsk Oblast",
        "Asia/Yekaterinburg",
        {
            "2025-01-01": ("5.4900", "2.0200", "41.3000"),
            "2025-07-01": ("6.2700", "2.3100", "47.9500"),
        },
    ),
]
SEED_NAMESPACE = uuid.UUID("6f1c2a52-5d0e-4f2a-9a51-6b1f3c0d9e11")
PRICE_SCALE = 4


def _stored_time(moment: datetime, dialect: str) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(tzinfo=None) if dialect == "sqlite" else utc


def upgrade() -> None:
    regions = op.create_table(
        "regions",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_regions")),
    )
    op.create_table(
        "users",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "households",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("region_code", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_households_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_households_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
    )
    op.create_index(op.f("ix_households_owner_id"), "households", ["owner_id"])
    tariffs = op.create_table(
        "tariffs",
        sa.Column("region_code", sa.String(length=10), nullable=False),
        sa.Column("resource", sa.String(length=1), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False, comment="RUB per unit x 10^4"),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_tariffs_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariffs")),
        sa.UniqueConstraint(
            "region_code",
            "resource",
            "valid_from",
            name=op.f("uq_tariffs_region_code_resource_valid_from"),
        ),
    )
    op.create_index(op.f("ix_tariffs_region_code"), "tariffs", ["region_code"])
    op.create_table(
        "edge_agents",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_edge_agents_household_id_households")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_agents")),
    )
    op.create_index(op.f("ix_edge_agents_household_id"), "edge_agents", ["household_id"])

    dialect = op.get_bind().dialect.name
    seeded_at = _stored_time(datetime(2025, 1, 1, tzinfo=UTC), dialect)
    region_rows, tariff_rows = [], []
    for code, name, zone, periods in SAMPLE_REGIONS:
        region_rows.append(
            {
                "code": code,
                "name": name,
                "timezone": zone,
                "is_sample": True,
                "created_at": seeded_at,
            }
        )
        for day, prices in periods.items():
            starts = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone))
            for resource, price in zip("EHW", prices, strict=True):
                tariff_rows.append(
                    {
                        "id": uuid.uuid5(SEED_NAMESPACE, f"{code}/{resource}/{day}"),
                        "region_code": code,
                        "resource": resource,
                        "price": int(price.replace(".", ""))
                        * 10 ** (PRICE_SCALE - len(price.split(".")[1])),
                        "valid_from": _stored_time(starts, dialect),
                        "note": "sample tariff for demonstration, not an official price",
                        "is_sample": True,
                        "created_at": seeded_at,
                        "created_by": None,
                    }
                )
    op.bulk_insert(regions, region_rows)
    op.bulk_insert(tariffs, tariff_rows)


def downgrade() -> None:
    op.drop_table("edge_agents")
    op.drop_table("tariffs")
    op.drop_table("households")
    op.drop_table("users")
    op.drop_table("regions")
