"""images keep the OS release as the caller wrote it and whether a disk goes with its server

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('os_release', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('auto_delete', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('auto_delete')
        batch_op.drop_column('os_release')
