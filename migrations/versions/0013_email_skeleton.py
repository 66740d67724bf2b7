"""users.email_skeleton: look-alike e-mail addresses collide

Revision ID: 0013_email_skeleton
Revises: 0012_idempotency_keys
Create Date: 2026-11-30 16:20:00

"""
from alembic import op
import sqlalchemy as sa

from pawmanity.identity.email_addresses import email_skeleton


# revision identifiers, used by Alembic.
revision = '0013_email_skeleton'
down_revision = '0012_idempotency_keys'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_skeleton', sa.String(length=512), nullable=True))
    users = sa.table('users', sa.column('id', sa.Uuid()), sa.column('email', sa.String()),
                     sa.column('created_at', sa.DateTime()), sa.column('email_skeleton', sa.String()))
    connection = op.get_bind()
    taken = set()
    # The oldest account keeps its skeleton; a look-alike created earlier keeps working but stays NULL, so it
    # blocks nothing and is blocked by nothing (an admin can review them: WHERE email_skeleton IS NULL).
    for user_id, email in connection.execute(sa.select(users.c.id, users.c.email)
                                             .order_by(users.c.created_at, users.c.id)).all():
        skeleton = email_skeleton(email)
        if skeleton in taken:
            continue
        taken.add(skeleton)
        connection.execute(users.update().where(users.c.id == user_id).values(email_skeleton=skeleton))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_users_email_skeleton'), ['email_skeleton'])


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_email_skeleton'), type_='unique')
        batch_op.drop_column('email_skeleton')
