"""CPU-heavy work (decoding and re-encoding images) off the event loop.

Under gevent or eventlet one worker serves every request and socket from one thread: 300 ms of image work there
would freeze them all. Pillow releases the GIL while it decodes and encodes, so running the work on a small native
thread pool keeps the loop answering and uses a second core. The pool is small on purpose: each job holds several
full-size copies of an image in memory.
"""

import threading

from flask import current_app

_pool = None
_pool_lock = threading.Lock()


def run_blocking(function, *args, **kwargs):
    mode = current_app.config.get("ASYNC_MODE")
    if mode == "gevent" and _gevent_patched():
        return _gevent_pool(current_app.config["MEDIA_THREADS"]).apply(function, args, kwargs)
    if mode == "eventlet" and _eventlet_patched():
        from eventlet import tpool

        return tpool.execute(function, *args, **kwargs)
    return function(*args, **kwargs)


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
