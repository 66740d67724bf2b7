"""The platform's Celery tasks: re-encrypting identifiers under a new key in the background."""

from celery import shared_task

from pawmanity.core.encryption import rotation as key_rotation


@shared_task(name="pawmanity.core.encryption.tasks.rotate_field_keys", ignore_result=True)
def rotate_field_keys(batch_size=500, seconds=30):
    """Batches for up to `seconds`, then hand over to a fresh task (a worker restart loses at most a batch, and
    the saved position makes the next run resume)."""
    if not key_rotation.rotate(batch_size=batch_size, seconds=seconds):
        rotate_field_keys.delay(batch_size, seconds)
