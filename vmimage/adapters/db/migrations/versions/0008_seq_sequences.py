"""seq sequences: on PostgreSQL, images, servers and volumes take their small integer id from
a database sequence (no table lock per insert); SQLite keeps MAX + 1 under its one writer

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 07:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ('images', 'servers', 'volumes')


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in TABLES:
        op.execute(sa.text(f'CREATE SEQUENCE {table}_seq_seq'))
        # The next number is one above the highest given so far (1 on an empty table).
        op.execute(sa.text(f"SELECT setval('{table}_seq_seq', COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"))


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in TABLES:
        op.execute(sa.text(f'DROP SEQUENCE {table}_seq_seq'))
