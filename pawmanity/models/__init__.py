"""Every SQLAlchemy model lives here, so there is one metadata and one migration history."""

from pawmanity.models.audit import GENESIS_HASH, AuditEvent
from pawmanity.models.base import UTCDateTime, utcnow
from pawmanity.models.user import ROLES, SELF_SERVICE_ROLES, AuthSession, RefreshToken, RevokedToken, User

__all__ = [
    "GENESIS_HASH", "ROLES", "SELF_SERVICE_ROLES", "AuditEvent", "AuthSession", "RefreshToken", "RevokedToken",
    "UTCDateTime", "User", "utcnow",
]
