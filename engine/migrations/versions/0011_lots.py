"""(moved) material lots: now the GMP pack's own migration gmp_0001 (gmp/migrations)

Revision ID: 0011
Revises: 0009
Kept, empty, so that the engine's history stays whole: a database at 0011 or later keeps the tables it made,
and the pack's migration finds them and only records itself.
"""

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
