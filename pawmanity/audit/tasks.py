"""Celery tasks of the audit trail."""

from celery import shared_task

from pawmanity.audit import trail


@shared_task(name="pawmanity.audit.tasks.chain_audit_events")
def chain_audit_events():
    """Seal the rows no after-commit chainer sealed (its process died first, or it gave way to a busy lock)."""
    return {"sealed": trail.chain_pending(wait=True)}
