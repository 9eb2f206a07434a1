"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 05:01:50.529534
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('images',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('os_hidden', sa.Boolean(), nullable=False),
    sa.Column('disk_format', sa.String(length=20), nullable=True),
    sa.Column('container_format', sa.String(length=20), nullable=True),
    sa.Column('min_disk', sa.Integer(), nullable=False),
    sa.Column('min_ram', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('virtual_size', sa.BigInteger(), nullable=True),
    sa.Column('checksum', sa.String(length=32), nullable=True),
    sa.Column('os_hash_algo', sa.String(length=64), nullable=True),
    sa.Column('os_hash_value', sa.String(length=128), nullable=True),
    sa.Column('os_version', sa.String(length=255), nullable=True),
    sa.Column('architecture', sa.String(length=30), nullable=True),
    sa.Column('boot_mode', sa.String(length=10), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_ref', sa.String(length=1024), nullable=True),
    sa.Column('description', sa.String(length=1024), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_images'))
    )
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.create_index('ix_images_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_images_name', ['name'], unique=False)
        batch_op.create_index('ix_images_owner_status', ['owner', 'status'], unique=False)
        batch_op.create_index('ix_images_visibility_status', ['visibility', 'status'], unique=False)

    op.create_table('project_quotas',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('limit', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource', name=op.f('pk_project_quotas'))
    )
    op.create_table('projects',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('domain_id', 'name', name='uq_projects_domain_name')
    )
    op.create_table('tokens',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('methods', sa.String(length=255), nullable=False),
    sa.Column('audit_id', sa.String(length=32), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_tokens'))
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_expires_at'), ['expires_at'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=512), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('default_project_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('domain_id', 'name', name='uq_users_domain_name')
    )
    op.create_table('access_keys',
    sa.Column('access_key', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_access_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('access_key', name=op.f('pk_access_keys'))
    )
    op.create_table('image_locations',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('store', sa.String(length=255), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_image_locations_image_id_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'store', name=op.f('pk_image_locations'))
    )
    op.create_table('image_members',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('member_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_image_members_image_id_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'member_id', name=op.f('pk_image_members'))
    )
    with op.batch_alter_table('image_members', schema=None) as batch_op:
        batch_op.create_index('ix_image_members_member_id', ['member_id'], unique=False)

    op.create_table('image_properties',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_image_properties_image_id_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'name', name=op.f('pk_image_properties'))
    )
    with op.batch_alter_table('image_properties', schema=None) as batch_op:
        batch_op.create_index('ix_image_properties_name', ['name'], unique=False)

    op.create_table('image_tags',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_image_tags_image_id_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'value', name=op.f('pk_image_tags'))
    )
    with op.batch_alter_table('image_tags', schema=None) as batch_op:
        batch_op.create_index('ix_image_tags_value', ['value'], unique=False)

    op.create_table('role_assignments',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_role_assignments_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'project_id', 'role', name=op.f('pk_role_assignments'))
    )


def downgrade() -> None:
    op.drop_table('role_assignments')
    with op.batch_alter_table('image_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_image_tags_value')

    op.drop_table('image_tags')
    with op.batch_alter_table('image_properties', schema=None) as batch_op:
        batch_op.drop_index('ix_image_properties_name')

    op.drop_table('image_properties')
    with op.batch_alter_table('image_members', schema=None) as batch_op:
        batch_op.drop_index('ix_image_members_member_id')

    op.drop_table('image_members')
    op.drop_table('image_locations')
    op.drop_table('access_keys')
    op.drop_table('users')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_expires_at'))

    op.drop_table('tokens')
    op.drop_table('projects')
    op.drop_table('project_quotas')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('ix_images_visibility_status')
        batch_op.drop_index('ix_images_owner_status')
        batch_op.drop_index('ix_images_name')
        batch_op.drop_index('ix_images_created_at_id')

    op.drop_table('images')
