"""regions: each image lives in one region, a project may act in one

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 05:30:00
"""
import os

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def _default_region() -> str:
    """The default region of the service being upgraded (settings.py: the first of
    VMIMAGE_REGIONS, else VMIMAGE_REGION): the images made before regions live there."""
    given = [part.strip() for part in os.environ.get("VMIMAGE_REGIONS", "").split(",") if part.strip()]
    return given[0] if given else os.environ.get("VMIMAGE_REGION", "RegionOne")


def upgrade() -> None:
    with op.batch_alter_table('images') as batch:
        batch.add_column(sa.Column('region', sa.String(length=64), nullable=False, server_default=''))
    op.execute(sa.text("UPDATE images SET region = :region").bindparams(region=_default_region()))
    op.create_index('ix_images_region_owner', 'images', ['region', 'owner'])
    with op.batch_alter_table('projects') as batch:
        batch.add_column(sa.Column('region', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('projects') as batch:
        batch.drop_column('region')
    op.drop_index('ix_images_region_owner', table_name='images')
    with op.batch_alter_table('images') as batch:
        batch.drop_column('region')
