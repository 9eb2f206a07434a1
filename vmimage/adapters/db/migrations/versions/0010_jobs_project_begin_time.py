"""jobs: an index on (project_id, begin_time), so a free worker finds at once when each
project's last job started (the job queue serves the project whose turn came least recently)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_jobs_project_id_begin_time', 'jobs', ['project_id', 'begin_time'])


def downgrade() -> None:
    op.drop_index('ix_jobs_project_id_begin_time', table_name='jobs')
