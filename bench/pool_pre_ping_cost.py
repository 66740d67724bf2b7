"""What `pool_pre_ping` costs per connection checkout, on the PostgreSQL named by --database-url.

Run from the repository root:

    .venv/bin/python bench/pool_pre_ping_cost.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                                                 [--checkouts 2000]

It opens two engines (pool_pre_ping off and on) with psycopg 3, warms each pool, then times `--checkouts` checkouts
that each run `SELECT 1` (the smallest request a view makes) and prints the mean time per checkout for each, and
the difference: the round trip the ping adds. Nothing is written.
"""

import argparse
import statistics
import time

from sqlalchemy import create_engine, text


def time_checkouts(url, pre_ping, checkouts, rounds=5):
    engine = create_engine(url, pool_pre_ping=pre_ping, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:  # warm: the connection exists before timing starts
            conn.execute(text("SELECT 1"))
        means = []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(checkouts):
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            means.append((time.perf_counter() - started) / checkouts)
        return statistics.median(means)
    finally:
        engine.dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--checkouts", type=int, default=2000)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    without = time_checkouts(url, False, args.checkouts)
    with_ping = time_checkouts(url, True, args.checkouts)
    print(f"checkout + SELECT 1, pool_pre_ping off: {without * 1e3:.3f} ms")
    print(f"checkout + SELECT 1, pool_pre_ping on:  {with_ping * 1e3:.3f} ms")
    print(f"cost of the ping per checkout:          {(with_ping - without) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
