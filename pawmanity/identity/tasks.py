"""Celery tasks of the identity domain."""

from celery import shared_task

from pawmanity.identity import tokens


@shared_task(name="pawmanity.identity.tasks.purge_expired_tokens")
def purge_expired_tokens():
    refresh, revoked = tokens.purge_expired()
    return {"refresh_tokens": refresh, "revoked_tokens": revoked}
