"""Celery tasks of the pharmacy domain."""

from celery import shared_task

from pawmanity.pharmacy import stock


@shared_task(name="pawmanity.pharmacy.tasks.release_expired_reservations")
def release_expired_reservations():
    return stock.release_expired_reservations()


@shared_task(name="pawmanity.pharmacy.tasks.expire_lots")
def expire_lots():
    return stock.expire_lots()
