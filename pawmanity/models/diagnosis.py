"""The durable outbox for AI diagnosis logs: kept in PostgreSQL when MongoDB cannot take them, drained later."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pawmanity.extensions import db
from pawmanity.models.base import UTCDateTime, utcnow


class DiagnosisLogOutbox(db.Model):
    __tablename__ = "diagnosis_log_outbox"

    diagnosis_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    document: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
