"""Celery entry point: `celery -A pawmanity.worker worker` (and `beat`).

The worker's Socket.IO is send-only: what its tasks emit travels over the Redis message queue to the servers.
"""

from pawmanity import create_app

flask_app = create_app(settings={"SOCKETIO_WRITE_ONLY": True})
celery = flask_app.extensions["celery"]
