"""metadefs: Glance's metadata definitions catalog (namespaces, objects, properties, tags,
resource types and their associations with namespaces)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _namespace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['namespace_id'], ['metadef_namespaces.id'],
                                   name=op.f(f'fk_{table}_namespace_id_metadef_namespaces'),
                                   ondelete='CASCADE')


def upgrade() -> None:
    op.create_table('metadef_namespaces',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('namespace', sa.String(length=80), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metadef_namespaces')),
    sa.UniqueConstraint('namespace', name=op.f('uq_metadef_namespaces_namespace'))
    )
    with op.batch_alter_table('metadef_namespaces', schema=None) as batch_op:
        batch_op.create_index('ix_metadef_namespaces_owner', ['owner'], unique=False)

    op.create_table('metadef_resource_types',
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_metadef_resource_types'))
    )

    op.create_table('metadef_objects',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('namespace_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('required', sa.Text(), nullable=True),
    sa.Column('properties', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    _namespace_fk('metadef_objects'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metadef_objects')),
    sa.UniqueConstraint('namespace_id', 'name', name='uq_metadef_objects_namespace_name')
    )

    op.create_table('metadef_properties',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('namespace_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    _namespace_fk('metadef_properties'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metadef_properties')),
    sa.UniqueConstraint('namespace_id', 'name', name='uq_metadef_properties_namespace_name')
    )

    op.create_table('metadef_tags',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('namespace_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    _namespace_fk('metadef_tags'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metadef_tags')),
    sa.UniqueConstraint('namespace_id', 'name', name='uq_metadef_tags_namespace_name')
    )

    op.create_table('metadef_namespace_resource_types',
    sa.Column('namespace_id', sa.String(length=36), nullable=False),
    sa.Column('resource_type', sa.String(length=80), nullable=False),
    sa.Column('prefix', sa.String(length=80), nullable=True),
    sa.Column('properties_target', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['metadef_namespaces.id'],
                            name='fk_metadef_ns_resource_types_namespace_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_type'], ['metadef_resource_types.name'],
                            name='fk_metadef_ns_resource_types_resource_type'),
    sa.PrimaryKeyConstraint('namespace_id', 'resource_type', name=op.f('pk_metadef_namespace_resource_types'))
    )
    with op.batch_alter_table('metadef_namespace_resource_types', schema=None) as batch_op:
        batch_op.create_index('ix_metadef_namespace_resource_types_resource_type', ['resource_type'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('metadef_namespace_resource_types')
    op.drop_table('metadef_tags')
    op.drop_table('metadef_properties')
    op.drop_table('metadef_objects')
    op.drop_table('metadef_resource_types')
    op.drop_table('metadef_namespaces')
