"""Appointment reminders, 24 hours and 1 hour before (windows configurable), each sent exactly once.

A reminder is claimed by inserting its (appointment, window) row in a transaction of its own; the unique key lets
exactly one of any number of concurrent workers win the claim, and only the winner notifies. Cancelled and finished
appointments get none; a window already passed (booked late) is skipped rather than sent late.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pawmanity.appointments import booking
from pawmanity.appointments.models import ReminderDelivery
from pawmanity.core.database import utcnow
from pawmanity.core.extensions import db
from pawmanity.identity.models import User
from pawmanity.notifications.notifier import notify
from pawmanity.scheduling.models import Appointment

REMINDED_STATUSES = ("requested", "confirmed")


def send_due(now=None):
    """Send every reminder that is due now. Returns how many reminders (appointment x window) went out."""
    now = now or utcnow()
    windows = sorted(current_app.config["REMINDER_WINDOWS"].items(), key=lambda item: -item[1])
    sent = 0
    for index, (window, minutes) in enumerate(windows):
        # Due from `minutes` before the start until the next (shorter) window takes over.
        later = windows[index + 1][1] if index + 1 < len(windows) else 0
        due = db.session.scalars(select(Appointment).where(
            Appointment.status.in_(REMINDED_STATUSES),
            Appointment.start_at <= now + timedelta(minutes=minutes),
            Appointment.start_at > now + timedelta(minutes=later),
            ~select(ReminderDelivery.id).where(ReminderDelivery.appointment_id == Appointment.id,
                                               ReminderDelivery.window == window).exists(),
        )).all()
        for appointment in due:
            if _claim(appointment.id, window):
                _remind(appointment, window)
                sent += 1
    return sent


def _claim(appointment_id, window):
    db.session.add(ReminderDelivery(appointment_id=appointment_id, window=window))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def _remind(appointment, window):
    recipients = [appointment.doctor.user_id, *booking.guardian_ids(appointment.patient_id)]
    users = db.session.scalars(select(User).where(User.id.in_(recipients))).all()
    for user in users:
        # Each person reads the time on their own clock.
        local = appointment.start_at.astimezone(ZoneInfo(user.timezone))
        when = f"{local.strftime('%A %d %B at %H:%M')} ({user.timezone})"
        notify([user.id], f"reminder.{window}",
               title="Upcoming appointment" if window == "24h" else "Appointment in one hour",
               body=f"Your {appointment.type.replace('_', ' ')} appointment for {appointment.patient.name} with "
                    f"{appointment.doctor.user.full_name} is on {when}.",
               data={"appointment_id": str(appointment.id)})
    delivery = db.session.scalar(select(ReminderDelivery).where(ReminderDelivery.appointment_id == appointment.id,
                                                                ReminderDelivery.window == window))
    delivery.recipients = len(users)
    db.session.commit()
