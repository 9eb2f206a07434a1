"""upload ownership (owner process + heartbeat) and the failed-login limiter's counters

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'uploads',
        sa.Column('image_id', sa.String(length=36), nullable=False),
        sa.Column('status', sa.String(length=30), nullable=False),
        sa.Column('store', sa.String(length=255), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('worker', sa.String(length=255), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('image_id', name=op.f('pk_uploads')),
    )
    op.create_index('ix_uploads_worker', 'uploads', ['worker'])
    op.create_table(
        'auth_failures',
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('blocked_until', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('subject', name=op.f('pk_auth_failures')),
    )


def downgrade() -> None:
    op.drop_table('auth_failures')
    op.drop_index('ix_uploads_worker', table_name='uploads')
    op.drop_table('uploads')
