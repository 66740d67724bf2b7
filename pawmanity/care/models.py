"""Who is cared for (patients, people or animals), who may act for them, and their medical history."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pawmanity.core.database import IdMixin, TimestampMixin, UTCDateTime, utcnow
from pawmanity.core.encryption.fields import INDEXED, EncryptedField
from pawmanity.core.extensions import db

SPECIES = ("human", "dog", "cat", "rabbit", "bird", "horse", "other")
SEXES = ("female", "male", "female_spayed", "male_neutered", "intersex", "unknown")
NEUTER_STATUSES = ("female_spayed", "male_neutered")
GUARDIAN_RELATIONS = ("self", "owner", "co_owner", "family", "guardian", "carer")
RECORD_KINDS = ("condition", "allergy", "medication", "vaccination", "procedure", "note", "lab_report",
                "prescription", "vital")


class Patient(IdMixin, TimestampMixin, db.Model):
    """A person or an animal under care. Versioned: every change bumps `version`, which is its ETag."""

    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint(f"species IN {SPECIES}", name="species_known"),
        CheckConstraint(f"sex IN {SEXES}", name="sex_known"),
    )

    name: Mapped[str] = mapped_column(String(120), nullable=False)
    species: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    breed: Mapped[str | None] = mapped_column(String(120))
    sex: Mapped[str] = mapped_column(String(16), nullable=False, default="unknown")
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    # Encrypted; found by its blind index (upper-cased: chip readers differ in case for hex-style ids).
    microchip_id = EncryptedField(blind_index=INDEXED, normalize=str.upper)
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(7, 3))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}

    guardianships: Mapped[list["Guardianship"]] = relationship(back_populates="patient",
                                                               cascade="all, delete-orphan")


class Guardianship(db.Model):
    """An account allowed to act for a patient (the person themself, an owner, a parent...)."""

    __tablename__ = "guardianships"
    __table_args__ = (
        UniqueConstraint("patient_id", "user_id", name="uq_guardianships_patient_user"),
        CheckConstraint(f"relation IN {GUARDIAN_RELATIONS}", name="relation_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                               index=True)
    relation: Mapped[str] = mapped_column(String(16), nullable=False)
    # The primary guardian created the record; only they (or an admin) may archive it or remove others.
    is_primary: Mapped[bool] = mapped_column(default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    patient: Mapped[Patient] = relationship(back_populates="guardianships")


class GuardianInvitation(IdMixin, db.Model):
    """A single-use, expiring invitation for another account to become a guardian. Only its hash is stored."""

    __tablename__ = "guardian_invitations"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False,
                                                  index=True)
    email = EncryptedField(nullable=False)  # compared with the accepting account's address after decryption
    relation: Mapped[str] = mapped_column(String(16), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    invited_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class WeightMeasurement(db.Model):
    __tablename__ = "weight_measurements"
    __table_args__ = (CheckConstraint("weight_kg > 0", name="weight_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False,
                                                  index=True)
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(7, 3), nullable=False)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    patient: Mapped[Patient] = relationship()


class MedicalRecord(IdMixin, TimestampMixin, db.Model):
    """One entry of a patient's history. Every version is kept in medical_record_versions."""

    __tablename__ = "medical_records"
    __table_args__ = (CheckConstraint(f"kind IN {RECORD_KINDS}", name="kind_known"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), nullable=False,
                                                  index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    details: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}


class MedicalRecordVersion(db.Model):
    __tablename__ = "medical_record_versions"
    __table_args__ = (UniqueConstraint("record_id", "version", name="uq_medical_record_versions_record_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medical_records.id", ondelete="CASCADE"),
                                                 nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    details: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    changed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


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
