"""import and locations: several locations per store (URLs in the http store) with metadata,
and jobs findable by the image they work on (Glance's image tasks)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The old key (image_id, store) allowed one location per store; the http store holds
    # any number of URLs. Rebuilt rather than altered: SQLite cannot change a primary key.
    op.create_table(
        'image_locations_new',
        sa.Column('image_id', sa.String(length=36), sa.ForeignKey('images.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('position', sa.Integer(), primary_key=True),
        sa.Column('store', sa.String(length=255), nullable=False),
        sa.Column('key', sa.String(length=2048), nullable=False),
        sa.Column('meta', sa.Text(), nullable=False, server_default='{}'),
    )
    op.execute('INSERT INTO image_locations_new (image_id, position, store, "key", meta) '
               'SELECT image_id, position, store, "key", \'{}\' FROM image_locations')
    op.drop_table('image_locations')
    op.rename_table('image_locations_new', 'image_locations')
    op.create_index('ix_image_locations_store', 'image_locations', ['store'])

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_jobs_image_id', ['image_id'])


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_image_id')
        batch_op.drop_column('image_id')
    op.drop_index('ix_image_locations_store', table_name='image_locations')
    op.create_table(
        'image_locations_old',
        sa.Column('image_id', sa.String(length=36), sa.ForeignKey('images.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('store', sa.String(length=255), primary_key=True),
        sa.Column('key', sa.String(length=1024), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
    )
    op.execute('INSERT INTO image_locations_old (image_id, store, "key", position) '
               'SELECT image_id, store, MIN("key"), MIN(position) FROM image_locations '
               'GROUP BY image_id, store')
    op.drop_table('image_locations')
    op.rename_table('image_locations_old', 'image_locations')
