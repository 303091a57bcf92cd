"""keyed audit trail: where the chain's MACs begin, and a row MAC on the rows Part 11 records depend on

``audit_head.keyed_from`` is the sequence number of the ``audit.keyed`` event from which on the chain's links
are HMAC-SHA-256 with the installation's key (kept outside the database); earlier links stay plain SHA-256.
``row_mac`` (HMAC-SHA-256 with the same key) seals instance state, task data, role grants, deployment status
and users' printed names, so that ``gmpflow audit verify`` finds a direct UPDATE. Existing rows are sealed
when the key is introduced (``engine.integrity``), which the ``audit.keyed`` event records.

Revision ID: 0009
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None

SEALED = ('process_instance', 'human_task', 'user_role', 'deployment', 'app_user')


def upgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyed_from', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
    for table in SEALED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('row_mac', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in SEALED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('row_mac')
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('keyed_from')
