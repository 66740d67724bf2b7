"""identifiers encrypted: e-mail addresses, phones, licence and microchip numbers; unique constraints on blind indexes

Revision ID: 0020_field_encryption
Revises: 0019_push_and_mfa
Create Date: 2026-11-30 18:45:00

Each plaintext column gives way to `<field>_ciphertext` (AES-256-GCM bound to table, field and row id) and, where
it is looked up, `<field>_index` (HMAC-SHA256 blind index), with the unique constraints moved onto the indexes.
Existing rows are encrypted here with the app's keys (pawmanity/core/encryption/fields.py), so the keys must be
configured before `flask db upgrade`; stored idempotent answers are encrypted in place. The downgrade decrypts.
"""
from alembic import op
import sqlalchemy as sa

import pawmanity.core.database  # noqa: F401  (custom column types)
from pawmanity.core.encryption.fields import blind_index, decrypt_value, encrypt_value
from pawmanity.identity.email_addresses import email_skeleton


revision = '0020_field_encryption'
down_revision = '0019_push_and_mfa'
branch_labels = None
depends_on = None

CHUNK = 1000

# table, field, old column type, NOT NULL, blind index: None | (normaliser, unique)
FIELDS = (
    ('users', 'email', sa.String(length=254), True, (None, True)),
    ('patients', 'microchip_id', sa.String(length=32), False, (str.upper, False)),
    ('guardian_invitations', 'email', sa.String(length=254), True, None),
    ('doctor_profiles', 'license_number', sa.String(length=64), True, None),
    ('pharmacies', 'phone', sa.String(length=40), False, None),
    ('pharmacies', 'email', sa.String(length=254), False, None),
)


def _chunks(connection, table, columns):
    """Rows in primary-key order, a chunk at a time (keyset), so a large table is not held in memory."""
    last = None
    while True:
        query = sa.select(table.c.id, *columns).order_by(table.c.id).limit(CHUNK)
        if last is not None:
            query = query.where(table.c.id > last)
        rows = connection.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _table(name, *columns):
    return sa.table(name, sa.column('id', sa.Uuid()), *(sa.column(column, sa.Text()) for column in columns))


def upgrade():
    connection = op.get_bind()
    for table_name, field, _, not_null, index in FIELDS:
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.add_column(sa.Column(f'{field}_ciphertext', sa.Text(), nullable=True))
            if index:
                batch_op.add_column(sa.Column(f'{field}_index', sa.String(length=64), nullable=True))
        table = _table(table_name, field, f'{field}_ciphertext', f'{field}_index')
        for rows in _chunks(connection, table, [table.c[field]]):
            changes = []
            for row_id, value in rows:
                if value is None:
                    continue
                change = {'_id': row_id, 'sealed': encrypt_value(value, table=table_name, column=field, row_id=row_id)}
                if index:
                    change['index'] = blind_index(table_name, field, value, index[0])
                changes.append(change)
            if changes:
                values = {f'{field}_ciphertext': sa.bindparam('sealed')}
                if index:
                    values[f'{field}_index'] = sa.bindparam('index')
                connection.execute(table.update().where(table.c.id == sa.bindparam('_id')).values(values), changes)
    # users.email_skeleton becomes a blind index only; a look-alike that kept NULL in 0013 keeps NULL.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_skeleton_index', sa.String(length=64), nullable=True))
    users = _table('users', 'email_skeleton', 'email_skeleton_index')
    for rows in _chunks(connection, users, [users.c.email_skeleton]):
        changes = [{'_id': row_id, 'index': blind_index('users', 'email_skeleton', skeleton)}
                   for row_id, skeleton in rows if skeleton is not None]
        if changes:
            connection.execute(users.update().where(users.c.id == sa.bindparam('_id'))
                               .values(email_skeleton_index=sa.bindparam('index')), changes)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_email', type_='unique')
        batch_op.drop_constraint('uq_users_email_skeleton', type_='unique')
        batch_op.drop_column('email')
        batch_op.drop_column('email_skeleton')
        batch_op.alter_column('email_ciphertext', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('email_index', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_users_email_index', ['email_index'])
        batch_op.create_unique_constraint('uq_users_email_skeleton_index', ['email_skeleton_index'])
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_column('microchip_id')
        batch_op.create_index('ix_patients_microchip_id_index', ['microchip_id_index'], unique=False)
    for table_name, field, _, not_null, index in FIELDS:
        if table_name in ('users', 'patients'):
            continue
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.drop_column(field)
            if not_null:
                batch_op.alter_column(f'{field}_ciphertext', existing_type=sa.Text(), nullable=False)

    # Stored answers of idempotent requests may hold the same identifiers: encrypted in place, bound to their row.
    keys = sa.table('idempotency_keys', sa.column('id', sa.Uuid()), sa.column('body', sa.LargeBinary()))
    for rows in _chunks(connection, keys, [keys.c.body]):
        changes = [{'_id': row_id, 'sealed': encrypt_value(body, table='idempotency_keys', column='body',
                                                            row_id=row_id).encode()}
                   for row_id, body in rows if body is not None]
        if changes:
            connection.execute(keys.update().where(keys.c.id == sa.bindparam('_id'))
                               .values(body=sa.bindparam('sealed')), changes)

    op.create_table('field_key_rotations',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('last_row_id', sa.String(length=64), nullable=True),
    sa.Column('rewritten', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('started_at', pawmanity.core.database.UTCDateTime(), nullable=False),
    sa.Column('finished_at', pawmanity.core.database.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key_id', 'table_name', 'field', name=op.f('pk_field_key_rotations'))
    )


def downgrade():
    op.drop_table('field_key_rotations')
    connection = op.get_bind()
    keys = sa.table('idempotency_keys', sa.column('id', sa.Uuid()), sa.column('body', sa.LargeBinary()))
    for rows in _chunks(connection, keys, [keys.c.body]):
        changes = [{'_id': row_id, 'plain': decrypt_value(body.decode(), table='idempotency_keys', column='body',
                                                           row_id=row_id, as_bytes=True)}
                   for row_id, body in rows if body is not None]
        if changes:
            connection.execute(keys.update().where(keys.c.id == sa.bindparam('_id'))
                               .values(body=sa.bindparam('plain')), changes)

    for table_name, field, old_type, not_null, index in FIELDS:
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.add_column(sa.Column(field, old_type, nullable=True))
        table = _table(table_name, field, f'{field}_ciphertext')
        for rows in _chunks(connection, table, [table.c[f'{field}_ciphertext']]):
            changes = [{'_id': row_id, 'plain': decrypt_value(token, table=table_name, column=field, row_id=row_id)}
                       for row_id, token in rows if token is not None]
            if changes:
                connection.execute(table.update().where(table.c.id == sa.bindparam('_id'))
                                   .values({field: sa.bindparam('plain')}), changes)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_skeleton', sa.String(length=512), nullable=True))
    users = _table('users', 'email', 'email_skeleton', 'email_skeleton_index')
    for rows in _chunks(connection, users, [users.c.email, users.c.email_skeleton_index]):
        changes = [{'_id': row_id, 'skeleton': email_skeleton(email)} for row_id, email, index in rows
                   if index is not None]
        if changes:
            connection.execute(users.update().where(users.c.id == sa.bindparam('_id'))
                               .values(email_skeleton=sa.bindparam('skeleton')), changes)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_email_index', type_='unique')
        batch_op.drop_constraint('uq_users_email_skeleton_index', type_='unique')
        batch_op.drop_column('email_ciphertext')
        batch_op.drop_column('email_index')
        batch_op.drop_column('email_skeleton_index')
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=False)
        batch_op.create_unique_constraint('uq_users_email', ['email'])
        batch_op.create_unique_constraint('uq_users_email_skeleton', ['email_skeleton'])
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index('ix_patients_microchip_id_index')
        batch_op.drop_column('microchip_id_ciphertext')
        batch_op.drop_column('microchip_id_index')
    for table_name, field, _, not_null, index in FIELDS:
        if table_name in ('users', 'patients'):
            continue
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.drop_column(f'{field}_ciphertext')
            if not_null:
                batch_op.alter_column(field, existing_type=_old_type(table_name, field), nullable=False)


def _old_type(table_name, field):
    return next(old for name, column, old, *_ in FIELDS if (name, column) == (table_name, field))
