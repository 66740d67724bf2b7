"""The database triggers that fill `sync_changes`: one per synced table and operation, on PostgreSQL and SQLite.

Triggers rather than ORM events: a bulk `delete()`, raw SQL, a foreign-key cascade or another service's erasure
never passes through the ORM's per-object hooks, and a missed delete is a record a phone keeps forever.

On PostgreSQL they are statement-level triggers over transition tables (one INSERT ... SELECT per statement, so a
1,000-reading vitals batch costs one extra statement, not 1,000), stamped with `pg_current_xact_id()`, the
writing transaction's 64-bit id. On SQLite they are row-level triggers and `sync_changes.id` alone orders the log.

`install()` is called by the migration that created the log and must be called again by any later migration that
rebuilds a captured table (SQLite's batch mode copies a table and drops the old one, and its triggers with it);
tests/test_sync.py checks every captured table has its triggers at the head of the migration chain.
"""

from sqlalchemy import text

# table -> the columns naming whose the row is (see tables.py): sync_changes column -> the table's column
CAPTURED = {
    "patients": {"patient_id": "id"},
    "medical_records": {"patient_id": "patient_id"},
    "appointments": {"patient_id": "patient_id", "doctor_id": "doctor_id"},
    "messages": {"consultation_id": "consultation_id"},
    "vital_observations": {"patient_id": "patient_id"},
    "notifications": {"user_id": "user_id"},
}
SCOPE_COLUMNS = ("patient_id", "doctor_id", "consultation_id", "user_id")
EVENTS = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}


def trigger_names(table):
    return [f"sync_capture_{table}_{op.lower()}" for op in EVENTS]


def _columns(table, alias):
    scopes = CAPTURED[table]
    return ", ".join(f"{alias}.{scopes[column]}" if column in scopes else "NULL" for column in SCOPE_COLUMNS)


def _postgresql(table, op):
    name = f"sync_capture_{table}_{op.lower()}"
    rows = "old_rows" if op == "D" else "new_rows"
    referencing = "OLD TABLE AS old_rows" if op == "D" else "NEW TABLE AS new_rows"
    return [
        f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync_changes (txid, table_name, row_id, op, {", ".join(SCOPE_COLUMNS)}, changed_at)
    SELECT pg_current_xact_id()::text::bigint, '{table}', r.id::text, '{op}', {_columns(table, "r")},
           clock_timestamp()
    FROM {rows} r;
    RETURN NULL;
END $$""",
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"""CREATE TRIGGER {name} AFTER {EVENTS[op]} ON {table} REFERENCING {referencing}
FOR EACH STATEMENT EXECUTE FUNCTION {name}()""",
    ]


def _sqlite(table, op):
    name = f"sync_capture_{table}_{op.lower()}"
    row = "OLD" if op == "D" else "NEW"
    return [
        f"DROP TRIGGER IF EXISTS {name}",
        f"""CREATE TRIGGER {name} AFTER {EVENTS[op]} ON {table} FOR EACH ROW BEGIN
    INSERT INTO sync_changes (table_name, row_id, op, {", ".join(SCOPE_COLUMNS)}, changed_at)
    VALUES ('{table}', {row}.id, '{op}', {_columns(table, row)}, strftime('%Y-%m-%d %H:%M:%f000', 'now'));
END""",
    ]


def install(bind, tables=None):
    build = _postgresql if bind.dialect.name == "postgresql" else _sqlite
    for table in tables or CAPTURED:
        for op in EVENTS:
            for statement in build(table, op):
                bind.execute(text(statement))


def uninstall(bind, tables=None):
    postgresql = bind.dialect.name == "postgresql"
    for table in tables or CAPTURED:
        for name in trigger_names(table):
            if postgresql:
                bind.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
                bind.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
            else:
                bind.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
