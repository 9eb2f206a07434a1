"""the audit trail

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False),
        sa.Column('target', sa.String(length=300), nullable=True),
        sa.Column('target_project_id', sa.String(length=255), nullable=True),
        sa.Column('detail', sa.String(length=300), nullable=True),
        sa.Column('user_id', sa.String(length=255), nullable=True),
        sa.Column('user_name', sa.String(length=300), nullable=True),
        sa.Column('project_id', sa.String(length=255), nullable=True),
        sa.Column('address', sa.String(length=100), nullable=True),
        sa.Column('request_id', sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_audit_events'),
    )
    op.create_index('ix_audit_events_at', 'audit_events', ['at'])


def downgrade() -> None:
    op.drop_index('ix_audit_events_at', table_name='audit_events')
    op.drop_table('audit_events')
