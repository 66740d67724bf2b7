"""Celery tasks of the notifications domain: e-mail leaves the request through here."""

from celery import shared_task

from pawmanity.notifications import mailer


@shared_task(name="pawmanity.notifications.tasks.send_email", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=5)
def send_email(*, to, subject, body):
    mailer.send_mail(to=to, subject=subject, body=body)
