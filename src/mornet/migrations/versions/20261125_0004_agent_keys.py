"""Edge agents: Ed25519 public keys and argon2 broker passwords instead of the secret's digest

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:30:00

Agents provisioned before keep their configuration: their signing key and broker password are
derived from the same secret, so each row's public key and password hash are computed here
from the stored digest, which is then dropped. A copy of the database taken *before* this
migration still holds those digests: if such a copy may have leaked, re-provision the agents.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("edge_agents") as batch:
        batch.add_column(sa.Column("public_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
    agents = sa.table(
        "edge_agents",
        sa.column("id", sa.Uuid()),
        sa.column("secret_hash", sa.String()),
        sa.column("public_key", sa.String()),
        sa.column("password_hash", sa.String()),
    )
    connection = op.get_bind()
    hasher = PasswordHasher()
    for agent_id, digest_hex in connection.execute(sa.select(agents.c.id, agents.c.secret_hash)):
        digest = bytes.fromhex(digest_hex)
        # The same derivation as `mornet.wire.telemetry.seed_of_digest` (copied: a migration
        # must not change when the code does).
        seed = hashlib.sha256(b"mornet agent ed25519 v1:" + digest).digest()
        key = Ed25519PrivateKey.from_private_bytes(seed)
        connection.execute(
            agents.update()
            .where(agents.c.id == agent_id)
            .values(
                public_key=key.public_key().public_bytes_raw().hex(),
                password_hash=hasher.hash(digest.hex()),
            )
        )
    with op.batch_alter_table("edge_agents") as batch:
        batch.alter_column("public_key", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("password_hash", existing_type=sa.String(length=200), nullable=False)
        batch.drop_column("secret_hash")


def downgrade() -> None:
    # The digest cannot be recovered from a public key: agents must be re-provisioned.
    with op.batch_alter_table("edge_agents") as batch:
        batch.add_column(
            sa.Column("secret_hash", sa.String(length=64), nullable=False, server_default="")
        )
        batch.drop_column("password_hash")
        batch.drop_column("public_key")
