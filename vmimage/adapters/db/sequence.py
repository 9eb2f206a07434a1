"""Small integer ids (1, 2, 3...) for rows whose primary key is a string.

Portable across SQLite and PostgreSQL: the next number is MAX + 1 inside the inserting
transaction. SQLite already serialises writers; PostgreSQL takes a transaction-scoped
advisory lock per table, so two inserters never pick the same number. Rows are never
removed (deleted entities keep their row), so a number is never given twice.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select, text


def next_seq(conn: Connection, table: Table) -> int:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"seq:{table.name}"})
    return int(conn.execute(select(func.coalesce(func.max(table.c.seq), 0) + 1)).scalar_one())
