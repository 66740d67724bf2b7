"""Production entry point.

    gunicorn -k gevent -w 1 wsgi:app           (default; gunicorn's gevent worker monkey-patches before loading us)
    PAWMANITY_ASYNC_MODE=eventlet python wsgi.py   (opt-in eventlet, served by socketio.run)

Monkey-patching must happen before anything else is imported, hence the order below.
"""

import os

if os.environ.get("PAWMANITY_ASYNC_MODE") == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    # psycopg 3 must wait with select() under eventlet's green sockets.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

from pawmanity import create_app  # noqa: E402
from pawmanity.core.extensions import socketio  # noqa: E402

app = create_app()

if __name__ == "__main__":
    socketio.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
