"""(moved) the equipment logbook: now the GMP pack's own migration gmp_0002 (gmp/migrations)

Revision ID: 0013
Revises: 0011
Kept, empty, so that the engine's history stays whole: a database at 0013 or later keeps the table it made,
and the pack's migration finds it and only records itself.
"""

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
