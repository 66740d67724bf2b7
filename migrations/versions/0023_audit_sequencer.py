"""audit trail sealed by a chainer: chain_position, unsealed rows, sealing as the one update allowed

Revision ID: 0023_audit_sequencer
Revises: 0022_vitals_rollups
Create Date: 2026-11-30 22:10:00

Requests now insert audit rows without their place in the chain; a chainer seals them later (pawmanity/audit/trail.py).
The chain's order becomes chain_position: the rows already there keep their chain, numbered in id order, the order
they were chained in. prev_hash and hash may be NULL until a row is sealed; hash loses its unique index (equal hashes
would need equal predecessors, which the unique prev_hash refuses) and chain_position gains one. On PostgreSQL the
append-only trigger lets exactly one update through: sealing an unsealed row, with every other column unchanged.
SQLite seals rows as it inserts them and keeps refusing every update.
"""
import sqlalchemy as sa
from alembic import op

revision = '0023_audit_sequencer'
down_revision = '0022_vitals_rollups'
branch_labels = None
depends_on = None

CONTENT_COLUMNS = ('id', 'occurred_at', 'actor_id', 'actor_role', 'action', 'object_type', 'object_id', 'outcome',
                   'ip')
UNCHANGED = ' AND '.join(f'NEW.{column} IS NOT DISTINCT FROM OLD.{column}' for column in CONTENT_COLUMNS)

POSTGRES_SEAL_ONLY_GUARD = f"""
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The chainer's seal: an unsealed row gets its place and hashes, and nothing else about it changes.
    -- (json has no equality operator; its text is what was stored.)
    IF TG_OP = 'UPDATE' THEN
        IF OLD.chain_position IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
           AND NEW.chain_position IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
           AND {UNCHANGED} AND NEW.detail::text IS NOT DISTINCT FROM OLD.detail::text THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
END $$;
"""
POSTGRES_APPEND_ONLY_GUARD = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
END $$;
"""
# As 0001 created them; SQLite rebuilds the table in a batch operation, and its triggers go with the old table.
SQLITE_AUDIT_GUARDS = (
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only (DELETE refused)'); END""",
)
NUMBER_IN_ID_ORDER = """
UPDATE audit_events SET chain_position = numbered.place
FROM (SELECT id, row_number() OVER (ORDER BY id) AS place FROM audit_events) AS numbered
WHERE audit_events.id = numbered.id
"""


def _guards_off(dialect):
    if dialect == 'postgresql':
        op.execute('ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only')
    else:
        op.execute('DROP TRIGGER IF EXISTS audit_events_no_update')
        op.execute('DROP TRIGGER IF EXISTS audit_events_no_delete')


def _guards_on(dialect, postgres_guard):
    if dialect == 'postgresql':
        op.execute(postgres_guard)
        op.execute('ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only')
    else:
        for statement in SQLITE_AUDIT_GUARDS:
            op.execute(statement)


def upgrade():
    dialect = op.get_bind().dialect.name
    _guards_off(dialect)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
    op.execute(NUMBER_IN_ID_ORDER)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.drop_constraint(batch_op.f('uq_audit_events_hash'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_chain_position'), ['chain_position'])
        batch_op.create_index('ix_audit_events_unchained', ['id'], unique=False,
                              postgresql_where=sa.text('chain_position IS NULL'),
                              sqlite_where=sa.text('chain_position IS NULL'))
    _guards_on(dialect, POSTGRES_SEAL_ONLY_GUARD)


def downgrade():
    dialect = op.get_bind().dialect.name
    if op.get_bind().scalar(sa.text('SELECT count(*) FROM audit_events WHERE chain_position IS NULL')):
        raise RuntimeError('audit rows are waiting for the chainer: run `flask audit chain` before downgrading')
    _guards_off(dialect)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_unchained', postgresql_where=sa.text('chain_position IS NULL'),
                            sqlite_where=sa.text('chain_position IS NULL'))
        batch_op.drop_constraint(batch_op.f('uq_audit_events_chain_position'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_hash'), ['hash'])
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column('chain_position')
    _guards_on(dialect, POSTGRES_APPEND_ONLY_GUARD)
