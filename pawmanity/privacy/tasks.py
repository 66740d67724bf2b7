"""Celery tasks of the privacy domain: building an export right after it is requested, and the scheduled sweeps that
delete expired export archives and purge restricted records whose retention period has ended."""

from celery import shared_task

from pawmanity.privacy import archive, erasure


@shared_task(name="pawmanity.privacy.tasks.build_export")
def build_export(export_id):
    export = archive.build(export_id)
    return export.status if export is not None else None


@shared_task(name="pawmanity.privacy.tasks.expire_exports")
def expire_exports():
    return archive.expire_due()


@shared_task(name="pawmanity.privacy.tasks.purge_restricted_records")
def purge_restricted_records():
    return erasure.purge_due()
