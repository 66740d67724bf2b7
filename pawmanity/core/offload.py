"""CPU-heavy work off the event loop, on small bounded thread pools.

Under gevent or eventlet one worker serves every request and socket from one thread: 25 ms of argon2 or 300 ms of
image work there would freeze every chat and call on the worker for that long. The work that matters here runs in
native code that releases the GIL (argon2-cffi, Pillow's codecs), so a native thread pool keeps the loop answering
and uses a second core; pure Python on a pool thread still gives the loop the GIL every switch interval (5 ms).

Two pools, so a burst of sign-ins cannot queue behind image uploads or the reverse:
- `media`: image and document cleaning. Small on purpose: each job holds several full-size copies of an image.
- `cpu`: password hashing and verification, feed rendering and other short CPU-bound steps.

Each pool is bounded twice: by its threads and by how many jobs may wait. When both are full the caller gets
`Busy` (503 with Retry-After) at once instead of an unbounded wait that would hold its connection and memory.

`cooperative_stream` wraps a request body so that reading it yields to the loop between chunks: with the whole body
already in the socket's buffer, a read never waits, and werkzeug's multipart parser would take a photo upload (2-3 MB:
recv, the boundary search, the spool file's writes) in one turn of 12-22 ms of CPU (bench/upload_loop_bench.py).

`after_response` runs a follow-up (delivering a diagnosis log already committed to the outbox) in a green thread of
its own, so the caller's answer does not wait for it; without a green event loop (tests, the CLI) it runs at once.
Only work whose data is already durable belongs there: the process may die before it runs.
"""

import os
import threading

from flask import current_app, has_app_context

from pawmanity.core.errors import ServiceUnavailable

POOLS = {
    # name: (config key for threads, config key for the waiting jobs allowed)
    "media": ("MEDIA_THREADS", "MEDIA_QUEUE"),
    "cpu": ("CPU_THREADS", "CPU_QUEUE"),
}

COOPERATIVE_CHUNK = 64 * 1024  # werkzeug's form parser reads this much at a time; about 0.3 ms of its CPU
POOL_THREAD_NICENESS = 10  # below the loop's thread (0); see _yield_to_the_loop
_pools = {}
_pools_lock = threading.Lock()


class Busy(ServiceUnavailable):
    code = "server_busy"


def run_blocking(function, *args, pool="media", **kwargs):
    """`function(*args, **kwargs)` on the named pool; what it raises is raised here, in the caller.

    Outside a green event loop (threading mode, the CLI, a prefork Celery worker) it simply runs here: there is no
    loop to keep free, and each caller already has a thread of its own."""
    if not has_app_context():
        return function(*args, **kwargs)
    config = current_app.config
    threads_key, queue_key = POOLS[pool]
    if config[threads_key] == 0:  # the pool turned off: on the loop, as before (bench/loop_bench.py compares)
        return function(*args, **kwargs)
    loop = green_loop()
    if loop == "gevent":
        bounded = _gevent_pool(pool, config[threads_key], config[queue_key])
        return bounded.run(function, args, kwargs, retry_after=config.get("DEPENDENCY_RETRY_AFTER_SECONDS", 5))
    if loop == "eventlet":
        from eventlet import tpool

        return _unwrap(tpool.execute(_outcome_of, function, args, kwargs))
    return function(*args, **kwargs)


class _BoundedGeventPool:
    """A gevent ThreadPool that refuses work once `threads + queue` jobs are in flight.

    The count is kept on the event loop's own thread, where greenlets only switch at blocking calls, so a plain
    integer is enough."""

    def __init__(self, name, threads, queue):
        from gevent.threadpool import ThreadPool

        self.name, self.limit, self.in_flight = name, threads + queue, 0
        self.pool = ThreadPool(maxsize=threads)

    def run(self, function, args, kwargs, *, retry_after):
        if self.in_flight >= self.limit:
            raise Busy(f"The server is busy ({self.name} work queue full); try again shortly.",
                       headers={"Retry-After": str(retry_after)})
        self.in_flight += 1
        try:
            return _unwrap(self.pool.apply(_outcome_of, (function, args, kwargs)))
        finally:
            self.in_flight -= 1


def green_loop():
    """"gevent" or "eventlet" in a worker served by that (monkey-patched) event loop, where a sleep only pauses this
    greenlet; else None (threading mode, the CLI, a prefork Celery worker, no app context)."""
    if not has_app_context():
        return None
    mode = current_app.config.get("ASYNC_MODE")
    if (mode == "gevent" and _gevent_patched()) or (mode == "eventlet" and _eventlet_patched()):
        return mode
    return None


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

    loop = green_loop()
    if loop == "gevent":
        import gevent

        gevent.spawn(follow_up)
    elif loop == "eventlet":
        import eventlet

        eventlet.spawn_n(follow_up)
    else:
        follow_up()


def cooperative_stream(stream):
    """`stream`, read in chunks of at most COOPERATIVE_CHUNK bytes with a turn for the other greenlets after each,
    when served by gevent or eventlet; else `stream` itself."""
    loop = green_loop()
    if loop is None:
        return stream
    if loop == "gevent":
        from gevent import sleep
    else:
        from eventlet import sleep
    return _CooperativeStream(stream, sleep)


class _CooperativeStream:
    """A request body that hands the loop on after every chunk it reads (`sleep(0)`: other greenlets run, then this
    one resumes), so a body that is already in the socket's buffer is not read and parsed in one go."""

    def __init__(self, stream, sleep):
        self._stream, self._sleep = stream, sleep

    def read(self, size=-1):
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(COOPERATIVE_CHUNK), b""))
        data = self._stream.read(min(size, COOPERATIVE_CHUNK))
        if data:
            self._sleep(0)
        return data

    def readline(self, size=-1):
        line = self._stream.readline(size)
        self._sleep(0)
        return line

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name):  # close(), exhaust(), limit, is_exhausted: the wrapped stream's own
        return getattr(self._stream, name)


_pool_thread = threading.local()


def _yield_to_the_loop():
    """Lower this pool thread's scheduling priority, once per thread (Linux sets `nice` per thread).

    On two cores a busy pool thread and the event loop's thread compete for a core; measured, the loop then waited
    up to 100 ms for one while its greenlets used 1 ms of CPU (the stall log's held_ms against cpu_ms). At a lower
    priority the hashing and image work yield the core whenever the loop has something to do, and still get every
    idle cycle."""
    if getattr(_pool_thread, "niced", False):
        return
    _pool_thread.niced = True
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), POOL_THREAD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: the work still runs, at the usual priority
        pass


def _outcome_of(function, args, kwargs):
    # gevent's pool prints a traceback for anything a job raises, expected refusals (415, 422) included, before
    # handing it back; so the job never raises, and the caller decides what deserves a log line.
    _yield_to_the_loop()
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


def _gevent_pool(name, threads, queue):
    with _pools_lock:
        if name not in _pools:
            _pools[name] = _BoundedGeventPool(name, threads, queue)
        return _pools[name]
