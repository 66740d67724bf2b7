"""Production entry point.

    gunicorn -k gevent -w 1 wsgi:app           (default; gunicorn's gevent worker monkey-patches before loading us)
    PAWMANITY_ASYNC_MODE=eventlet python wsgi.py   (opt-in eventlet, served by socketio.run)

Monkey-patching must happen before anything else is imported, hence the order below.
"""

import gc
import os
import sys

if os.environ.get("PAWMANITY_ASYNC_MODE") == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    # psycopg 3 must wait with select() under eventlet's green sockets.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
elif "gevent.monkey" in sys.modules and sys.modules["gevent.monkey"].is_module_patched("select"):
    # Under gunicorn's gevent worker psycopg would wait with poll(), which gevent emulates with a new poll object and
    # watchers at every wait; its select() is leaner: 31 against 52 us of CPU per `SELECT 1` round trip, a chat
    # message makes about ten. (Set before psycopg is imported, which picks its wait function once.)
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

from pawmanity import ConfigurationError, create_app, warm_up  # noqa: E402
from pawmanity.core.extensions import socketio  # noqa: E402

try:
    app = create_app()
except ConfigurationError as error:
    # One clear line instead of a traceback, for gunicorn, `flask` and `python wsgi.py` alike.
    sys.exit(f"PAWMANITY cannot start: {error}")

warm_up(app)
# Everything loaded so far (the app, its models, the symptom checker's knowledge base) lives as long as the process:
# moved out of the collector's reach, a full collection no longer walks it, and no longer holds the event loop for
# a hundred milliseconds in the middle of some request (bench/loop_bench.py showed it as a lone 180 ms stall).
gc.freeze()

if __name__ == "__main__":
    socketio.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
