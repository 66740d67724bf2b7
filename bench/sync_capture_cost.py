"""What the sync change-log triggers cost writers, on PostgreSQL: the same writes with the triggers on and off.

Run from the repository root:

    .venv/bin/python bench/sync_capture_cost.py [--rounds 30] [--database-url URL]

The bench database is re-created and migrated. Two kinds of write are timed, alternating triggers on and off each
round so that both see the same machine load: a vitals batch (one `INSERT ... ON CONFLICT DO UPDATE` of 500
readings, the shape `POST /vitals/batch` uses, half of them new and half updates) and 200 single-row patient
updates, each in its own transaction. Printed: the median per batch / per update with and without, and the ratio.
"""

import argparse
import statistics
import sys
import time
import uuid

import psycopg
from harness import add_service_arguments, check_service_arguments, prepare_database, run_bench

TRIGGERS = {"vital_observations": ("i", "u", "d"), "patients": ("i", "u", "d")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds of each write, triggers on and off")
    add_service_arguments(parser)
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    return args


def set_triggers(conn, enabled):
    for table, ops in TRIGGERS.items():
        for op in ops:
            conn.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER sync_capture_{table}_{op}")


def vitals_batch(conn, patient, round_number):
    # 250 samples seen in the previous round (updates with a higher version) and 250 new ones
    started = time.perf_counter()
    conn.execute("""
        INSERT INTO vital_observations (patient_id, measurement, loinc, unit, value, taken_at, source_kind, source_id,
                                        sample_id, version, received_at)
        SELECT %(p)s, 'heart_rate', '8867-4', '/min', 80, now(), 'device', %(p)s, 's' || n, %(v)s, now()
        FROM generate_series(%(first)s, %(first)s + 499) AS n
        ON CONFLICT (patient_id, source_id, sample_id) DO UPDATE SET value = excluded.value,
            version = excluded.version WHERE vital_observations.version < excluded.version""",
                 {"p": patient, "v": round_number + 2, "first": round_number * 250})
    conn.commit()
    return time.perf_counter() - started


def patient_updates(conn, patient, count=200):
    started = time.perf_counter()
    for n in range(count):
        conn.execute("UPDATE patients SET name = %s, version = version + 1 WHERE id = %s", (f"Rex {n}", patient))
        conn.commit()
    return (time.perf_counter() - started) / count


def run(args, stack):
    prepare_database(args, stack)
    with psycopg.connect(args.database_url) as conn:
        patients = {}
        for label in ("on", "off"):
            patients[label] = uuid.uuid4()
            conn.execute("INSERT INTO patients (id, name, species, sex, version, created_at, updated_at) "
                         "VALUES (%s, 'Rex', 'dog', 'unknown', 1, now(), now())", (patients[label],))
        conn.commit()
        timings = {(kind, label): [] for kind in ("batch", "update") for label in ("on", "off")}
        for round_number in range(args.rounds):
            for label in (("on", "off") if round_number % 2 else ("off", "on")):
                set_triggers(conn, label == "on")
                conn.commit()
                timings["batch", label].append(vitals_batch(conn, patients[label], round_number))
                timings["update", label].append(patient_updates(conn, patients[label]))
        set_triggers(conn, True)
        conn.commit()
        logged = conn.execute("SELECT count(*) FROM sync_changes").fetchone()[0]
    for kind, unit in (("batch", "500-reading vitals upsert"), ("update", "single-row patient update")):
        on, off = (statistics.median(timings[kind, label]) * 1000 for label in ("on", "off"))
        print(f"{unit}: triggers on {on:.2f} ms, off {off:.2f} ms, ratio {on / off:.2f} "
              f"(+{on - off:.2f} ms)", flush=True)
    print(f"change-log rows written with triggers on: {logged:,}")
    return True


def main(argv=None):
    return run_bench("sync_capture_cost", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
