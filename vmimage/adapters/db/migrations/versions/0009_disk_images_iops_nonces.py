"""disks of whole-machine images (parent, device, volume type, IOPS), provisioned IOPS of
volumes, and the nonces of signed requests seen within the replay window

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('device', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('volume_type', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('iops', sa.Integer(), nullable=True))
        batch_op.create_index('ix_images_parent_id', ['parent_id'])
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provisioned_iops', sa.Integer(), nullable=True))
    op.create_table(
        'request_nonces',
        sa.Column('nonce', sa.String(length=128), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('nonce', name='pk_request_nonces'),
    )
    op.create_index('ix_request_nonces_seen_at', 'request_nonces', ['seen_at'])


def downgrade() -> None:
    op.drop_index('ix_request_nonces_seen_at', table_name='request_nonces')
    op.drop_table('request_nonces')
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_column('provisioned_iops')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('ix_images_parent_id')
        batch_op.drop_column('iops')
        batch_op.drop_column('volume_type')
        batch_op.drop_column('device')
        batch_op.drop_column('parent_id')
