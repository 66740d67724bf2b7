"""Celery entry point: `celery -A pawmanity.worker worker` (and `beat`)."""

from pawmanity import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
