"""Celery tasks of the sync domain."""

from celery import shared_task

from pawmanity.sync import retention


@shared_task(name="pawmanity.sync.tasks.purge_tombstones")
def purge_tombstones():
    return retention.purge()
