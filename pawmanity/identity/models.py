"""Accounts and their sign-in sessions."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pawmanity.core.database import IdMixin, TimestampMixin, UTCDateTime, utcnow
from pawmanity.core.encryption.fields import UNIQUE, EncryptedField
from pawmanity.core.extensions import db

ROLES = ("patient", "doctor", "admin")
SELF_SERVICE_ROLES = ("patient", "doctor")


class User(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="role_known"),)

    # Encrypted (email_ciphertext), looked up and kept unique by its blind index (email_index). Stored lower-cased
    # (normalize_email), so uniqueness is case-insensitive.
    email = EncryptedField(nullable=False, blind_index=UNIQUE)
    # What the address looks like (identity/email_addresses.py), kept only as a unique blind index, so a look-alike
    # of an existing address cannot become a second account. NULL only for look-alikes that existed before 0013.
    email_skeleton = EncryptedField(ciphertext=False, blind_index=UNIQUE)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    full_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AuthSession(IdMixin, db.Model):
    """One sign-in: the family of refresh tokens rotated from one login. Revoking it ends them all."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(256))

    user: Mapped[User] = relationship()


class RefreshToken(db.Model):
    """A refresh token's jti. Each may be used once; a second use means it leaked."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_expires_at", "expires_at"),)

    jti: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    session: Mapped[AuthSession] = relationship()


class RevokedToken(db.Model):
    """The token blocklist (access-token jtis and whole sessions): the one source of truth, Redis or not."""

    __tablename__ = "revoked_tokens"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class TotpFactor(db.Model):
    """A user's TOTP authenticator (RFC 6238): the shared secret, when it was confirmed with a first code, and the
    last time-step a code was accepted for (a code is good once: nothing at or before that step is accepted again).

    `secret` (base32) is stored encrypted (AES-256-GCM, bound to the user's id): whoever reads it can make codes."""

    __tablename__ = "totp_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret = EncryptedField(nullable=False, row_id="user_id")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(IdMixin, db.Model):
    """A single-use recovery code, hashed like a password (argon2id); ten are issued when MFA is turned on."""

    __tablename__ = "mfa_recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    code_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
