"""sync: the change log (filled by triggers on every synced table), pull cursors and the purge watermark

Revision ID: 0021_sync
Revises: 0020_field_encryption
Create Date: 2026-11-30 19:00:00

"""
from alembic import op
import sqlalchemy as sa

import pawmanity.core.database  # noqa: F401  (custom column types)
from pawmanity.sync import capture


# revision identifiers, used by Alembic.
revision = '0021_sync'
down_revision = '0020_field_encryption'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sync_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('txid', sa.BigInteger(), nullable=True),
    sa.Column('table_name', sa.String(length=32), nullable=False),
    sa.Column('row_id', sa.String(length=40), nullable=False),
    sa.Column('op', sa.String(length=1), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('doctor_id', sa.Uuid(), nullable=True),
    sa.Column('consultation_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('changed_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("op IN ('I', 'U', 'D')", name=op.f('ck_sync_changes_op_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_changes')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('sync_changes', schema=None) as batch_op:
        batch_op.create_index('ix_sync_changes_changed_at', ['changed_at'], unique=False)
        batch_op.create_index('ix_sync_changes_txid', ['txid'], unique=False)

    op.create_table('sync_cursors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sync_cursors_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_cursors'))
    )
    with op.batch_alter_table('sync_cursors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_cursors_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_cursors_user_id'), ['user_id'], unique=False)

    op.create_table('sync_watermark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purged_below', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_watermark'))
    )
    op.execute("INSERT INTO sync_watermark (id, purged_below) VALUES (1, 0)")
    capture.install(op.get_bind())


def downgrade():
    capture.uninstall(op.get_bind())
    op.drop_table('sync_watermark')
    with op.batch_alter_table('sync_cursors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_cursors_user_id'))
        batch_op.drop_index(batch_op.f('ix_sync_cursors_created_at'))
    op.drop_table('sync_cursors')
    with op.batch_alter_table('sync_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_changes_txid')
        batch_op.drop_index('ix_sync_changes_changed_at')
    op.drop_table('sync_changes')
