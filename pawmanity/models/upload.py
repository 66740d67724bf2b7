"""Uploaded files: clinical photos, documents and DICOM images, tied to a patient."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.extensions import db
from pawmanity.models.base import IdMixin, UTCDateTime, utcnow


class Upload(IdMixin, db.Model):
    __tablename__ = "uploads"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"), nullable=False,
                                                  index=True)
    consultation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consultations.id", ondelete="SET NULL"),
                                                              index=True)
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("medical_records.id", ondelete="SET NULL"),
                                                        index=True)
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    filename: Mapped[str] = mapped_column(String(160), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    # What the bytes are (decided from the bytes, never from the name or the client's Content-Type).
    content_type: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    storage_backend: Mapped[str] = mapped_column(String(16), nullable=False)
    # Content-addressed keys of the stored file and of its PNG preview (thumbnail, or a DICOM rendering).
    storage_key: Mapped[str] = mapped_column(String(128), nullable=False)
    preview_key: Mapped[str | None] = mapped_column(String(128))
    preview_sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
