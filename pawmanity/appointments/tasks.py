"""Celery tasks of the appointments domain."""

from celery import shared_task

from pawmanity.appointments import reminders


@shared_task(name="pawmanity.appointments.tasks.send_due_reminders")
def send_due_reminders():
    return reminders.send_due()
