"""A database pool that serves its waiters in the order they came.

SQLAlchemy's QueuePool wakes a waiter through a Condition; under gevent the woken greenlet runs only at its next
turn, and a request that arrives meanwhile takes the returned connection first. With more requests than
connections, some waited many turns: list_bench (wrk, 16 connections) put GET /appointments' p99 at 3.5 s with 10
connections, against 124 ms with enough of them for everyone. Here a returned connection's place goes straight to
the longest waiter, never to a newcomer, so a short pool is a fair queue: it bounds how many greenlets interleave
in the database at once, the way a checkout counter does.
"""

import threading
from collections import deque

from sqlalchemy import exc
from sqlalchemy.pool import QueuePool


class FairQueue:
    """`permits` places, handed out first come, first served; a released place goes to the oldest waiter."""

    def __init__(self, permits):
        self._free = permits
        self._waiters = deque()
        self._lock = threading.Lock()  # a gevent lock once monkey-patched: held for a few lines, never across a wait

    def acquire(self, timeout):
        """Take a place, waiting at most `timeout` seconds; False if none came in time."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._lock:
            if turn in self._waiters:
                self._waiters.remove(turn)
                return False
        return True  # handed a place between the timeout and the lock: it is ours

    def release(self):
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the place passes to the oldest waiter, the count unchanged
            else:
                self._free += 1


class FairQueuePool(QueuePool):
    """QueuePool behind a FairQueue of pool_size + max_overflow places: a checkout first takes its place in line,
    so the pool underneath always has a connection, or room to open one, when its turn comes. (With unlimited
    overflow, max_overflow=-1, nobody ever waits and there is no line.)"""

    def __init__(self, creator, pool_size=5, max_overflow=10, timeout=30.0, **kwargs):
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, timeout=timeout, **kwargs)
        self._line = FairQueue(pool_size + max_overflow) if max_overflow >= 0 else None

    def _do_get(self):
        if self._line is None:
            return super()._do_get()
        if not self._line.acquire(self._timeout):
            raise exc.TimeoutError(f"{type(self).__name__} limit of size {self.size()} overflow {self._max_overflow} "
                                   f"reached, connection timed out, timeout {self._timeout:.2f}", code="3o7r")
        try:
            return super()._do_get()
        except BaseException:
            self._line.release()
            raise

    def _do_return_conn(self, record):
        try:
            super()._do_return_conn(record)
        finally:
            if self._line is not None:
                self._line.release()
