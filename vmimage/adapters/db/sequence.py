"""Small integer ids (1, 2, 3...) for rows whose primary key is a string.

PostgreSQL: the table's sequence (`<table>_seq_seq`, migration 0008), so concurrent inserters
never wait for each other; a number is never given twice, and one whose transaction rolled
back is skipped. SQLite: MAX + 1 inside the inserting transaction, which is safe because
SQLite has one writer at a time (write transactions BEGIN IMMEDIATE). Rows are never removed
(deleted entities keep their row), so MAX + 1 never gives a number twice either.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, Table, func, select, text


def seq_value(conn: Connection, table: Table) -> ColumnElement[int]:
    """The next number as an SQL expression, for the INSERT itself (with RETURNING seq): one
    statement instead of two."""
    if conn.dialect.name == "postgresql":
        return func.nextval(f"{table.name}_seq_seq")
    return select(func.coalesce(func.max(table.c.seq), 0) + 1).scalar_subquery()


def next_seq(conn: Connection, table: Table) -> int:
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text(f"SELECT nextval('{table.name}_seq_seq')")).scalar_one())
    return int(conn.execute(select(func.coalesce(func.max(table.c.seq), 0) + 1)).scalar_one())
