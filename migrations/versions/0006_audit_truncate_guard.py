"""refuse TRUNCATE of the audit trail

Revision ID: 0006_audit_truncate_guard
Revises: 0005_video_sessions
Create Date: 2026-11-25 04:15:00

The row-level trigger of 0001 refuses UPDATE and DELETE; TRUNCATE is a statement and bypasses it, so it gets its own.
"""
from alembic import op

revision = '0006_audit_truncate_guard'
down_revision = '0005_video_sessions'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events')
