"""The database pool serves waiters in arrival order: a returned connection goes to the longest waiter, never to a
request that arrives just then (SQLAlchemy's QueuePool let newcomers take it, and under load some requests waited
seconds)."""

import threading
import time

import pytest
from sqlalchemy import create_engine, exc, text

from pawmanity.core.database import FairQueue, FairQueuePool
from tests.support import postgres_only


def wait_until(condition, timeout=5):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_waiters_get_their_places_in_arrival_order():
    line, served = FairQueue(1), []
    assert line.acquire(timeout=1)
    threads = []
    for number in range(5):
        thread = threading.Thread(target=lambda n=number: line.acquire(timeout=5) and served.append(n))
        thread.start()
        threads.append(thread)
        wait_until(lambda n=number: len(line._waiters) == n + 1)  # in line before the next one comes
    for count in range(1, 6):
        line.release()
        wait_until(lambda c=count: len(served) == c)
    for thread in threads:
        thread.join()
    assert served == [0, 1, 2, 3, 4]


def test_a_released_place_goes_to_the_waiter_not_to_a_newcomer():
    line, got = FairQueue(1), []
    assert line.acquire(timeout=1)
    waiter = threading.Thread(target=lambda: got.append(line.acquire(timeout=5)))
    waiter.start()
    wait_until(lambda: len(line._waiters) == 1)
    line.release()
    assert line.acquire(timeout=0) is False  # a newcomer, at the very moment the place was freed
    waiter.join()
    assert got == [True]


def test_a_waiter_gives_up_after_its_timeout_and_leaves_the_line():
    line = FairQueue(1)
    assert line.acquire(timeout=1)
    started = time.monotonic()
    assert line.acquire(timeout=0.05) is False
    assert time.monotonic() - started >= 0.05 and not line._waiters
    line.release()
    assert line.acquire(timeout=0)  # the place is free again, not lost to the one who gave up


@postgres_only
def test_the_pool_times_out_then_serves_again_and_a_failed_connect_gives_its_place_back(database_url):
    failures = [1]
    real = create_engine(database_url).pool._creator

    def creator():
        if failures:
            failures.pop()
            raise OSError("the database is not there")
        return real()

    engine = create_engine(database_url, poolclass=FairQueuePool, pool_size=1, max_overflow=0, pool_timeout=0.2,
                           creator=creator)
    with pytest.raises(Exception, match="not there"):
        engine.connect()
    with engine.connect() as first:  # the failed attempt did not keep the only place
        first.execute(text("SELECT 1"))
        with pytest.raises(exc.TimeoutError):
            engine.connect()
    with engine.connect() as again:
        assert again.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
