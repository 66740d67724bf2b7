"""Every SQLAlchemy model lives here, so there is one metadata and one migration history."""

from pawmanity.models.audit import GENESIS_HASH, AuditEvent
from pawmanity.models.base import UTCDateTime, utcnow
from pawmanity.models.diagnosis import DiagnosisFeedback, DiagnosisLogOutbox
from pawmanity.models.consultation import (
    NOTIFICATION_CATEGORIES, NOTIFICATION_CHANNELS, REMINDER_WINDOWS, Consultation, Message, NotificationPreference,
    ReadReceipt, ReminderDelivery,
)
from pawmanity.models.care import (
    GUARDIAN_RELATIONS, NEUTER_STATUSES, RECORD_KINDS, SEXES, SPECIES, GuardianInvitation, Guardianship,
    MedicalRecord, MedicalRecordVersion, Patient, WeightMeasurement,
)
from pawmanity.models.scheduling import (
    ACTIVE_STATUSES, APPOINTMENT_STATUSES, APPOINTMENT_TYPES, Appointment, AppointmentEvent, AvailabilityRule,
    DoctorProfile, DoctorSpecies, Notification, TimeOff,
)
from pawmanity.models.idempotency import IdempotencyKey
from pawmanity.models.upload import Upload
from pawmanity.models.video import VIDEO_STATUSES, VideoAttendance, VideoJoinToken, VideoSession
from pawmanity.models.user import ROLES, SELF_SERVICE_ROLES, AuthSession, RefreshToken, RevokedToken, User

__all__ = [
    "ACTIVE_STATUSES", "APPOINTMENT_STATUSES", "APPOINTMENT_TYPES", "GENESIS_HASH", "GUARDIAN_RELATIONS",
    "NEUTER_STATUSES", "RECORD_KINDS", "ROLES", "SELF_SERVICE_ROLES", "SEXES", "SPECIES",
    "Appointment", "AppointmentEvent", "AuditEvent", "AuthSession", "AvailabilityRule", "DoctorProfile",
    "DoctorSpecies", "GuardianInvitation", "Guardianship", "MedicalRecord", "MedicalRecordVersion", "Notification",
    "Patient", "RefreshToken", "RevokedToken", "TimeOff", "UTCDateTime", "User", "WeightMeasurement", "utcnow",
    "NOTIFICATION_CATEGORIES", "NOTIFICATION_CHANNELS", "REMINDER_WINDOWS", "Consultation", "Message",
    "NotificationPreference", "ReadReceipt", "ReminderDelivery", "Upload",
    "VIDEO_STATUSES", "VideoAttendance", "VideoJoinToken", "VideoSession", "DiagnosisFeedback", "DiagnosisLogOutbox",
    "IdempotencyKey",
]
