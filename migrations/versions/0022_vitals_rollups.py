"""vitals: hourly rollups of the readings; patients' weights become body-weight readings

Revision ID: 0022_vitals_rollups
Revises: 0021_sync
Create Date: 2026-11-30 19:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022_vitals_rollups'
down_revision = '0021_sync'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('vital_hourly_rollups',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('measurement', sa.String(length=24), nullable=False),
    sa.Column('hour', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('minimum', sa.Float(), nullable=False),
    sa.Column('maximum', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_vital_hourly_rollups_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', 'measurement', 'hour', name=op.f('pk_vital_hourly_rollups'))
    )
    postgresql = op.get_bind().dialect.name == 'postgresql'
    # Weights recorded so far become body-weight readings (LOINC 29463-7, kg), named after their weight measurement,
    # as the app now does for each new one (pawmanity.vitals.readings.on_weight_recorded).
    op.execute(f"""
        INSERT INTO vital_observations (patient_id, measurement, loinc, unit, value, taken_at, source_kind, source_id,
                                        sample_id, version, received_at)
        SELECT w.patient_id, 'body_weight', '29463-7', 'kg', CAST(w.weight_kg AS {'double precision' if postgresql else 'REAL'}),
               w.measured_at, 'user', COALESCE(w.recorded_by, w.patient_id), 'weight-' || w.id, 1, w.measured_at
        FROM weight_measurements w
        WHERE NOT EXISTS (SELECT 1 FROM vital_observations o
                          WHERE o.patient_id = w.patient_id AND o.source_id = COALESCE(w.recorded_by, w.patient_id)
                            AND o.sample_id = 'weight-' || w.id)
    """)
    hour = ("CAST(floor(date_part('epoch', taken_at) / 3600) * 3600 AS BIGINT)" if postgresql
            else "CAST(strftime('%s', taken_at) AS INTEGER) / 3600 * 3600")
    op.execute(f"""
        INSERT INTO vital_hourly_rollups (patient_id, measurement, hour, count, total, minimum, maximum)
        SELECT patient_id, measurement, {hour}, count(*), sum(value), min(value), max(value)
        FROM vital_observations GROUP BY patient_id, measurement, {hour}
    """)


def downgrade():
    op.execute("""
        DELETE FROM vital_observations
        WHERE measurement = 'body_weight' AND sample_id IN (
            SELECT 'weight-' || w.id FROM weight_measurements w WHERE w.patient_id = vital_observations.patient_id)
    """)
    op.drop_table('vital_hourly_rollups')
