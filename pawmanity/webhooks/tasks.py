"""Celery tasks of the webhooks domain: deliveries right after the commit that stored them, and a beat sweep that
retries whatever is due."""

from celery import shared_task

from pawmanity.webhooks import delivery


@shared_task(name="pawmanity.webhooks.tasks.deliver_webhooks")
def deliver_webhooks(delivery_ids):
    return delivery.deliver_due(delivery_ids)


@shared_task(name="pawmanity.webhooks.tasks.deliver_due_webhooks")
def deliver_due_webhooks():
    return delivery.deliver_due()
