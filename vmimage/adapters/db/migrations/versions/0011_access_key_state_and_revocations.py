"""access keys can be disabled; the revocation epoch every process watches; a user's tokens
and keys found by user

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index('ix_access_keys_user_id', ['user_id'])
    op.create_index('ix_tokens_user_id', 'tokens', ['user_id'])
    epoch = op.create_table(
        'revocation_epoch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('epoch', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_revocation_epoch')),
    )
    op.bulk_insert(epoch, [{'id': 1, 'epoch': 0}])


def downgrade() -> None:
    op.drop_table('revocation_epoch')
    op.drop_index('ix_tokens_user_id', table_name='tokens')
    with op.batch_alter_table('access_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_access_keys_user_id')
        batch_op.drop_column('enabled')
