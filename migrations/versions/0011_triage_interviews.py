"""triage interviews

Revision ID: 0011_triage_interviews
Revises: 0010_calendar_feeds
Create Date: 2026-11-30 16:05:00

"""
from alembic import op
import sqlalchemy as sa

import pawmanity.core.database  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = '0011_triage_interviews'
down_revision = '0010_calendar_feeds'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('triage_interviews',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('caller_id', sa.Uuid(), nullable=False),
    sa.Column('species', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('diagnosis_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', pawmanity.core.database.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pawmanity.core.database.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_triage_interviews'))
    )
    with op.batch_alter_table('triage_interviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_triage_interviews_patient_id'), ['patient_id'], unique=False)


def downgrade():
    with op.batch_alter_table('triage_interviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_triage_interviews_patient_id'))

    op.drop_table('triage_interviews')
