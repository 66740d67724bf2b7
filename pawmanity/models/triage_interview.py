"""A symptom-checker interview: the patient's first symptoms, each question asked and its answer, and the outcome."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.extensions import db
from pawmanity.models.base import UTCDateTime, utcnow

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
