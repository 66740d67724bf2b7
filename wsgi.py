"""Production entry point.

    gunicorn -k gevent -w 1 wsgi:app           (default; gunicorn's gevent worker monkey-patches before loading us)
    PAWMANITY_ASYNC_MODE=eventlet python wsgi.py   (opt-in eventlet, served by socketio.run)

Monkey-patching must happen before anything else is imported, hence the order below.
"""

import os
import sys

if os.environ.get("PAWMANITY_ASYNC_MODE") == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    # psycopg 3 must wait with select() under eventlet's green sockets.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

from pawmanity import ConfigurationError, create_app  # noqa: E402
from pawmanity.core.extensions import socketio  # noqa: E402

try:
    app = create_app()
except ConfigurationError as error:
    # One clear line instead of a traceback, for gunicorn, `flask` and `python wsgi.py` alike.
    sys.exit(f"PAWMANITY cannot start: {error}")

if __name__ == "__main__":
    socketio.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
