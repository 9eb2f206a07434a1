"""data the database no longer references, until the reaper has deleted it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'data_to_reap',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('store', sa.String(length=255), nullable=False),
        sa.Column('key', sa.String(length=2048), nullable=False),
        sa.Column('partial', sa.Boolean(), nullable=False),
        sa.Column('image_id', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('claimed_by', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_data_to_reap'),
    )
    op.create_index('ix_data_to_reap_due_at', 'data_to_reap', ['due_at'])


def downgrade() -> None:
    op.drop_index('ix_data_to_reap_due_at', table_name='data_to_reap')
    op.drop_table('data_to_reap')
