"""Celery tasks of the triage domain."""

from celery import shared_task

from pawmanity.triage import diagnoses, evaluation


@shared_task(name="pawmanity.triage.tasks.drain_diagnosis_outbox")
def drain_diagnosis_outbox():
    return diagnoses.drain_outbox()


@shared_task(name="pawmanity.triage.tasks.retrain_symptom_checker")
def retrain_symptom_checker():
    return evaluation.retrain_if_not_worse()
