"""task_history: finished tasks that left an instance's live task tree (flat step cost, issue 19)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('task_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tasks', sa.Text(), nullable=False),
    sa.Column('row_mac', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('task_history', schema=None) as batch_op:
        batch_op.create_index('ix_task_history_instance', ['instance_id', 'id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":  # append-only, as audit_event and equipment_log
        op.execute("""
            CREATE OR REPLACE FUNCTION task_history_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'task_history is append-only: % refused', TG_OP; END $$ LANGUAGE plpgsql""")
        op.execute("CREATE TRIGGER task_history_no_change BEFORE UPDATE OR DELETE ON task_history "
                   "FOR EACH ROW EXECUTE FUNCTION task_history_append_only()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER task_history_no_{verb.lower()} BEFORE {verb} ON task_history "
                       f"BEGIN SELECT RAISE(ABORT, 'task_history is append-only: {verb} refused'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS task_history_no_change ON task_history")
        op.execute("DROP FUNCTION IF EXISTS task_history_append_only()")
    with op.batch_alter_table('task_history', schema=None) as batch_op:
        batch_op.drop_index('ix_task_history_instance')
    op.drop_table('task_history')
