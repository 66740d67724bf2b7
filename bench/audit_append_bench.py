"""What auditing adds to a transaction: an audited commit against the same commit without its audit event, in one
process on one PostgreSQL database, in the same run.

Run from the repository root (it benches the code of the tree it sits in, so a copy in an older checkout measures
the old append):

    .venv/bin/python bench/audit_append_bench.py [--commits 1500] [--threads 8] [--database-url URL]

The database (its name must contain "bench") is dropped, re-created and migrated, and dropped again at the end.
Each transaction reads one row (SELECT 1) and commits; the audited one also records one event naming 20 objects, as
a list read does. Figures:
  - CPU and wall time per commit on one connection, as ratios to the plain commit's;
    with a chainer (issue 15) twice: sealing after every commit (no coalescing, its worst case) and sealing once
    after the run (what the coalescing chainer approaches under load), its time included;
  - commits per second from --threads threads on their own connections, as a ratio to plain commits.
CPU is this process's (time.process_time: every thread of it); the database server's is not counted.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from harness import add_service_arguments, check_service_arguments, drop_database, reset_database  # noqa: E402

INSTANCE_DIR = tempfile.mkdtemp(prefix="pawmanity-audit-bench-")  # the embedded document store and key files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=1500, help="commits per single-connection run (default 1500)")
    parser.add_argument("--threads", type=int, default=8, help="threads of the concurrent run (default 8)")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    if args.database_url == parser.get_default("database_url") and "bench" not in args.database_url:
        parser.error("--database-url is required")
    check_service_arguments(parser, args)
    return args


def build_app(url, **settings):
    from pawmanity import create_app

    return create_app("testing", plugins=(), settings={
        "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://", 1),
        "INSTANCE_DIR": INSTANCE_DIR, **settings})


def transaction(audited, ids):
    from sqlalchemy import select

    from pawmanity.audit import trail
    from pawmanity.core.extensions import db
    from pawmanity.identity.actor import Actor

    db.session.execute(select(1))
    if audited:
        trail.record("patient.list", Actor(role="patient", user_id=uuid.uuid4(), ip="127.0.0.1"),
                     object_type="patient", detail={"ids": ids})
    db.session.commit()


def timed(app, commits, audited, *, chain_after=False):
    from pawmanity.audit import trail

    ids = [str(uuid.uuid4()) for _ in range(20)]
    with app.app_context():
        transaction(audited, ids)  # connect and warm up outside the clock
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(commits):
            transaction(audited, ids)
        if chain_after:
            trail.chain_pending(wait=True)
        return (time.process_time() - cpu) / commits * 1000, (time.perf_counter() - wall) / commits * 1000


def concurrent(app, threads, commits, audited):
    ids = [str(uuid.uuid4()) for _ in range(20)]
    errors, start = [], threading.Barrier(threads + 1)

    def work():
        try:
            with app.app_context():
                transaction(audited, ids)
                start.wait()
                for _ in range(commits):
                    transaction(audited, ids)
        except Exception as error:  # reported after the run
            errors.append(error)
            start.abort()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    wall = time.perf_counter()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return threads * commits / (time.perf_counter() - wall)


def run(args):
    from flask_migrate import upgrade

    from pawmanity.audit import trail
    from pawmanity.core.extensions import db

    sequenced = hasattr(trail, "chain_pending")
    print(f"audit append: {'unsealed insert + chainer (issue 15)' if sequenced else 'lock, read, insert'}; "
          f"load average before: {os.getloadavg()}", flush=True)
    reset_database(args.database_url)
    try:
        app = build_app(args.database_url, AUDIT_CHAIN_AFTER_COMMIT=False)
        with app.app_context():
            upgrade(directory=str(REPO / "migrations"))
        rows = []
        plain_cpu, plain_wall = timed(app, args.commits, False)
        rows.append(("plain commit (SELECT 1)", plain_cpu, plain_wall))
        if sequenced:
            eager = build_app(args.database_url, AUDIT_CHAIN_AFTER_COMMIT=True)  # threading: seals at each commit
            rows.append(("audited, sealed after every commit", *timed(eager, args.commits, True)))
            rows.append(("audited, sealed once after the run", *timed(app, args.commits, True, chain_after=True)))
        else:
            rows.append(("audited (lock, last hash, insert)", *timed(app, args.commits, True)))
        print(f"\n{'one connection, ' + str(args.commits) + ' commits':42} {'CPU ms':>8} {'x plain':>8} "
              f"{'wall ms':>8} {'x plain':>8}")
        for label, cpu, wall in rows:
            print(f"{label:42} {cpu:8.3f} {cpu / plain_cpu:8.2f} {wall:8.3f} {wall / plain_wall:8.2f}")
        per_thread = max(1, args.commits // args.threads)
        plain_rate = concurrent(app, args.threads, per_thread, False)
        audited_rate = concurrent(app, args.threads, per_thread, True)
        print(f"\n{args.threads} threads x {per_thread} commits: plain {plain_rate:.0f} commits/s, "
              f"audited {audited_rate:.0f} commits/s ({audited_rate / plain_rate:.2f}x plain)")
        with app.app_context():
            if sequenced:
                trail.chain_pending(wait=True)
            report = trail.verify_chain()
            print(f"audit chain after the runs: {tuple(report)}")
            db.engine.dispose()
        print(f"load average after: {os.getloadavg()}")
        return report[1] is None
    finally:
        drop_database(args.database_url)


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(0 if run(parse_args()) else 1)
