"""The symptom checker's tables: the durable outbox for diagnosis logs (kept in PostgreSQL when MongoDB cannot take
them, drained later), doctors' feedback on diagnoses, and interviews."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.core.database import UTCDateTime, utcnow
from pawmanity.core.extensions import db


class DiagnosisLogOutbox(db.Model):
    __tablename__ = "diagnosis_log_outbox"

    diagnosis_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    document: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class DiagnosisFeedback(db.Model):
    """A doctor's confirmed condition for a diagnosis, with the inputs needed to learn from it."""

    __tablename__ = "diagnosis_feedback"

    diagnosis_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    doctor_user_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    species: Mapped[str] = mapped_column(db.String(16), nullable=False, index=True)
    confirmed_condition: Mapped[str] = mapped_column(db.String(64), nullable=False)
    comment: Mapped[str | None] = mapped_column(db.Text)
    case: Mapped[dict] = mapped_column(JSON, nullable=False)  # symptoms, age, sex: what the model saw
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


INTERVIEW_STATUSES = ("asking", "finished")


class TriageInterview(db.Model):
    __tablename__ = "triage_interviews"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    caller_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    species: Mapped[str] = mapped_column(db.String(16), nullable=False)
    status: Mapped[str] = mapped_column(db.String(16), nullable=False, default="asking")
    # {"age_range": [from, to], "sex", "present": {code: [severity, days]}, "denied": [code],
    #  "questions": [{"id", "code", "reason", "answer"}], "stop_reason"}
    state: Mapped[dict] = mapped_column(JSON, nullable=False)
    diagnosis_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the logged final assessment
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
