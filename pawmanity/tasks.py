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
