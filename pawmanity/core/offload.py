"""Work off the request's path: blocking work off the event loop, and follow-up work after the answer.

Under gevent or eventlet one worker serves every request and socket from one thread: 300 ms of image work there
would freeze them all. Pillow releases the GIL while it decodes and encodes (and SQLite while it waits for the
disk), so running the work on a small native thread pool keeps the loop answering and uses a second core. The pool
is small on purpose: each job holds several full-size copies of an image in memory.

`after_response` runs a follow-up (delivering a diagnosis log already committed to the outbox) in a green thread of
its own, so the caller's answer does not wait for it; without a green event loop (tests, the CLI) it runs at once.
Only work whose data is already durable belongs there: the process may die before it runs.
"""

import threading

from flask import current_app

_pool = None
_pool_lock = threading.Lock()


def run_blocking(function, *args, **kwargs):
    """`function(*args, **kwargs)` on the pool; what it raises is raised here, in the caller."""
    mode = current_app.config.get("ASYNC_MODE")
    if mode == "gevent" and _gevent_patched():
        pool = _gevent_pool(current_app.config["MEDIA_THREADS"])
        return _unwrap(pool.apply(_outcome_of, (function, args, kwargs)))
    if mode == "eventlet" and _eventlet_patched():
        from eventlet import tpool

        return _unwrap(tpool.execute(_outcome_of, function, args, kwargs))
    return function(*args, **kwargs)


def after_response(function, *args):
    """`function(*args)` in an app context of its own, after the current request's answer when served by gevent or
    eventlet, else right now. What it raises is logged, never raised to the request."""
    app = current_app._get_current_object()

    def follow_up():
        with app.app_context():
            try:
                function(*args)
            except Exception:
                app.logger.exception("follow-up work after the response failed")

    mode = current_app.config.get("ASYNC_MODE")
    if mode == "gevent" and _gevent_patched():
        import gevent

        gevent.spawn(follow_up)
    elif mode == "eventlet" and _eventlet_patched():
        import eventlet

        eventlet.spawn_n(follow_up)
    else:
        follow_up()


def _outcome_of(function, args, kwargs):
    # gevent's pool prints a traceback for anything a job raises, expected refusals (415, 422) included, before
    # handing it back; so the job never raises, and the caller decides what deserves a log line.
    try:
        return True, function(*args, **kwargs)
    except Exception as error:
        return False, error


def _unwrap(outcome):
    succeeded, value = outcome
    if not succeeded:
        raise value
    return value


def _gevent_patched():
    from gevent import monkey

    return monkey.is_module_patched("socket")


def _eventlet_patched():
    import eventlet.patcher

    return eventlet.patcher.is_monkey_patched("socket")


def _gevent_pool(size):
    global _pool
    with _pool_lock:
        if _pool is None:
            from gevent.threadpool import ThreadPool

            _pool = ThreadPool(maxsize=size)
        return _pool
