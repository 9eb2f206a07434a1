"""an image's tags keep the order they were given in (IMS shows them so)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tags written before this keep position 0 and so read back in name order, as before.
    with op.batch_alter_table('image_tags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('image_tags', schema=None) as batch_op:
        batch_op.drop_column('position')
