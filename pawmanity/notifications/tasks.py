"""Celery tasks of the notifications domain: e-mail and Web Push leave the request through here."""

import requests
from celery import shared_task

from pawmanity.notifications import mailer, push


@shared_task(name="pawmanity.notifications.tasks.send_email", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=5)
def send_email(*, to, subject, body):
    mailer.send_mail(to=to, subject=subject, body=body)


@shared_task(name="pawmanity.notifications.tasks.send_push", bind=True, autoretry_for=(requests.ConnectionError, requests.Timeout),
             retry_backoff=True, max_retries=5)
def send_push(self, *, subscription_id, payload):
    """One push to one subscription; a busy push service (429, 5xx) is asked again later, after its Retry-After
    when it gives one in seconds."""
    try:
        return push.deliver(subscription_id, payload)
    except push.PushRetryLater as busy:
        delay = int(busy.retry_after) if str(busy.retry_after or "").isdigit() else 30 * 2 ** self.request.retries
        raise self.retry(countdown=min(delay, 3600), max_retries=5) from None
