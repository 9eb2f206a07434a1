"""bucket grants: the object storage's buckets a project may import from and export to

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bucket_grants',
        sa.Column('bucket', sa.String(length=255), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('bucket', 'project_id', name=op.f('pk_bucket_grants')),
    )
    op.create_index('ix_bucket_grants_project_id', 'bucket_grants', ['project_id'])


def downgrade() -> None:
    op.drop_index('ix_bucket_grants_project_id', table_name='bucket_grants')
    op.drop_table('bucket_grants')
