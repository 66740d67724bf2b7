"""Celery, bound to the Flask app: tasks run inside an app context; eager (in-process) in the embedded default."""

from celery import Celery, Task, shared_task


def celery_init_app(app):
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@shared_task(name="pawmanity.tasks.purge_expired_tokens")
def purge_expired_tokens():
    from pawmanity.services import tokens

    refresh, revoked = tokens.purge_expired()
    return {"refresh_tokens": refresh, "revoked_tokens": revoked}


@shared_task(name="pawmanity.tasks.send_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_email(*, to, subject, body):
    from pawmanity.services import mailer

    mailer.send_mail(to=to, subject=subject, body=body)


@shared_task(name="pawmanity.tasks.send_due_reminders")
def send_due_reminders():
    from pawmanity.services import reminders

    return reminders.send_due()


@shared_task(name="pawmanity.tasks.send_message_digests")
def send_message_digests():
    from pawmanity.services import messaging

    return messaging.send_digests()


@shared_task(name="pawmanity.tasks.end_expired_video_sessions")
def end_expired_video_sessions():
    from pawmanity.services import video

    return video.end_expired()


@shared_task(name="pawmanity.tasks.drain_diagnosis_outbox")
def drain_diagnosis_outbox():
    from pawmanity.services import diagnoses

    return diagnoses.drain_outbox()


@shared_task(name="pawmanity.tasks.retrain_symptom_checker")
def retrain_symptom_checker():
    from pawmanity.services import triage_model

    return triage_model.retrain_if_not_worse()
