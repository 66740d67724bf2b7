"""Live delivery over Socket.IO, sent once the database has committed what it announces.

With a Redis message queue configured the events reach clients of every server process, and a Celery worker can
send them too.
"""

from pawmanity.extensions import socketio
from pawmanity.services.transactions import on_commit

CHAT = "/chat"
NOTIFICATIONS = "/notifications"


def user_room(user_id):
    return f"user:{user_id}"


def consultation_room(consultation_id):
    return f"consultation:{consultation_id}"


def emit_after_commit(event_name, payload, *, namespace, room, skip_sid=None):
    on_commit(lambda: socketio.emit(event_name, payload, namespace=namespace, to=room, skip_sid=skip_sid))
