"""aries ids and refs: integer sequence numbers for images, servers and volumes, image refs,
an image's OS family and distribution, a server's CPU count

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 06:02:46.113343
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _number_rows(table: str, extra: dict | None = None) -> None:
    """Give existing rows 1, 2, 3... in creation order (and any extra column values)."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id FROM {table} ORDER BY created_at, id")).fetchall()
    for seq, (row_id,) in enumerate(rows, start=1):
        values = {"seq": seq, **{k: f(row_id) for k, f in (extra or {}).items()}}
        sets = ", ".join(f"{k} = :{k}" for k in values)
        conn.execute(sa.text(f"UPDATE {table} SET {sets} WHERE id = :row_id"), {**values, "row_id": row_id})


def upgrade() -> None:
    # Added nullable, filled, then made NOT NULL and unique: tables may already hold rows.
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ref', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('os_family', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('os_distribution', sa.String(length=255), nullable=True))
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cpu_count', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))

    _number_rows('images', {"ref": lambda image_id: image_id})   # an existing image's ref is its id
    _number_rows('servers')
    _number_rows('volumes')

    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('ref', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_images_ref'), ['ref'])
        batch_op.create_unique_constraint(batch_op.f('uq_images_seq'), ['seq'])
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_servers_seq'), ['seq'])
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_volumes_seq'), ['seq'])


def downgrade() -> None:
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_volumes_seq'), type_='unique')
        batch_op.drop_column('seq')

    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_servers_seq'), type_='unique')
        batch_op.drop_column('cpu_count')
        batch_op.drop_column('seq')

    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_images_seq'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_images_ref'), type_='unique')
        batch_op.drop_column('os_distribution')
        batch_op.drop_column('os_family')
        batch_op.drop_column('ref')
        batch_op.drop_column('seq')
