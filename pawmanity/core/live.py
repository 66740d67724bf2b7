"""Live delivery over Socket.IO, sent once the database has committed what it announces.

With a Redis message queue configured the events reach clients of every server process, and a Celery worker can
send them too.
"""

from pawmanity.core.database import on_commit
from pawmanity.core.extensions import socketio

CHAT = "/chat"
NOTIFICATIONS = "/notifications"


def user_room(user_id):
    return f"user:{user_id}"


def emit_after_commit(event_name, payload, *, namespace, room, skip_sid=None):
    on_commit(lambda: socketio.emit(event_name, payload, namespace=namespace, to=room, skip_sid=skip_sid))


def emit_to_users(event_name, payload, user_ids, *, namespace, skip_sid=None, after_commit=True):
    """Send to each user's own room: who receives is decided now, from the database, not by who joined a room
    earlier (a guardian removed since then hears nothing more)."""
    rooms = [user_room(user_id) for user_id in dict.fromkeys(user_ids)]

    def send():
        socketio.emit(event_name, payload, namespace=namespace, to=rooms, skip_sid=skip_sid)

    on_commit(send) if after_commit else send()
