"""revocations in the database

Until now, with REDIS_URL set, revoked tokens were recorded in Redis only. The blocklist now lives in the database
alone, so sessions revoked before this upgrade get their `sid:` row here; otherwise their access tokens (still valid
for up to 15 minutes) would answer again after the upgrade. Logging out always revoked the session too, so the
session rows cover the access tokens that were blocklisted one by one.

Revision ID: 0014_revocations_in_db
Revises: 0013_email_skeleton
Create Date: 2026-11-30 16:00:00

"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from pawmanity.core.database import UTCDateTime

# revision identifiers, used by Alembic.
revision = '0014_revocations_in_db'
down_revision = '0013_email_skeleton'
branch_labels = None
depends_on = None

auth_sessions = sa.table("auth_sessions", sa.column("id", sa.Uuid()), sa.column("expires_at", UTCDateTime()),
                         sa.column("revoked_at", UTCDateTime()))
revoked_tokens = sa.table("revoked_tokens", sa.column("key", sa.String(64)), sa.column("expires_at", UTCDateTime()))


def upgrade():
    bind = op.get_bind()
    revoked_sessions = bind.execute(sa.select(auth_sessions.c.id, auth_sessions.c.expires_at).where(
        auth_sessions.c.revoked_at.is_not(None), auth_sessions.c.expires_at > datetime.now(timezone.utc))).all()
    present = set(bind.execute(sa.select(revoked_tokens.c.key).where(revoked_tokens.c.key.like("sid:%"))).scalars())
    missing = [{"key": f"sid:{session_id}", "expires_at": expires_at} for session_id, expires_at in revoked_sessions
               if f"sid:{session_id}" not in present]
    if missing:
        op.bulk_insert(revoked_tokens, missing)


def downgrade():
    pass  # the rows stay true: those sessions were revoked
