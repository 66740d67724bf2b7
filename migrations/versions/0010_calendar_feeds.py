"""calendar feed URLs

Revision ID: 0010_calendar_feeds
Revises: 0009_diagnosis_feedback
Create Date: 2026-11-30 16:55:00

"""
from alembic import op
import sqlalchemy as sa

import pawmanity.core.database  # noqa: F401  (custom column types)


# revision identifiers, used by Alembic.
revision = '0010_calendar_feeds'
down_revision = '0009_diagnosis_feedback'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('calendar_feeds',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', pawmanity.core.database.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', pawmanity.core.database.UTCDateTime(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_calendar_feeds_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_calendar_feeds')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_calendar_feeds_secret_hash'))
    )


def downgrade():
    op.drop_table('calendar_feeds')
