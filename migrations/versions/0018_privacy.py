"""exports, the erasure log and restricted records

Revision ID: 0018_privacy
Revises: 0017_webhooks
Create Date: 2026-11-30 19:00:00

"""
from alembic import op
import sqlalchemy as sa

import pawmanity.core.database  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = '0018_privacy'
down_revision = '0017_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('data_exports',
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('subject_type', sa.String(length=8), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('requested_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ready_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('archive_name', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("subject_type IN ('patient', 'user')", name=op.f('ck_data_exports_subject_type_known')),
    sa.CheckConstraint("status IN ('pending', 'ready', 'failed', 'expired')", name=op.f('ck_data_exports_status_known')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_data_exports_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_exports'))
    )
    op.create_index(op.f('ix_data_exports_owner_id'), 'data_exports', ['owner_id'], unique=False)
    op.create_index('ix_data_exports_status_expires', 'data_exports', ['status', 'expires_at'], unique=False)
    op.create_table('erasures',
    sa.Column('subject_type', sa.String(length=8), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('requested_by', sa.Uuid(), nullable=True),
    sa.Column('requested_by_role', sa.String(length=16), nullable=True),
    sa.Column('performed_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('retain_until', pawmanity.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('purged_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("subject_type IN ('patient', 'user')", name=op.f('ck_erasures_subject_type_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures'))
    )
    op.create_index(op.f('ix_erasures_subject_id'), 'erasures', ['subject_id'], unique=False)
    op.create_table('restricted_records',
    sa.Column('erasure_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('restricted_at', pawmanity.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retain_until', pawmanity.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['erasure_id'], ['erasures.id'], name=op.f('fk_restricted_records_erasure_id_erasures'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_restricted_records'))
    )
    op.create_index(op.f('ix_restricted_records_erasure_id'), 'restricted_records', ['erasure_id'], unique=False)
    op.create_index(op.f('ix_restricted_records_retain_until'), 'restricted_records', ['retain_until'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_restricted_records_retain_until'), table_name='restricted_records')
    op.drop_index(op.f('ix_restricted_records_erasure_id'), table_name='restricted_records')
    op.drop_table('restricted_records')
    op.drop_index(op.f('ix_erasures_subject_id'), table_name='erasures')
    op.drop_table('erasures')
    op.drop_index('ix_data_exports_status_expires', table_name='data_exports')
    op.drop_index(op.f('ix_data_exports_owner_id'), table_name='data_exports')
    op.drop_table('data_exports')
