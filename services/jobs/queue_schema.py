"""Procrastinate's tables, types and functions in the history's PostgreSQL schema.

Applied and removed by the history's migration 0003 (never at import, never on SQLite).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Connection

__all__ = ["apply_queue_schema", "drop_queue_schema", "queue_schema_present"]

_PREFIX = "procrastinate"


def _driver_connection(connection: "Connection"):
    """The psycopg connection under SQLAlchemy's, inside the same transaction."""
    return connection.connection.driver_connection


def apply_queue_schema(connection: "Connection") -> None:
    """Create Procrastinate's objects in the connection's current schema, in its transaction."""
    try:
        from procrastinate.schema import SchemaManager
    except ModuleNotFoundError as exc:  # pragma: no cover - the postgres extra brings it
        raise ModuleNotFoundError(
            "the PostgreSQL job queue needs Procrastinate: pip install 'dgx-music[postgres]'"
        ) from exc
    # A statement without parameters: psycopg sends the script as it is (no % escaping).
    _driver_connection(connection).execute(SchemaManager.get_schema())


def queue_schema_present(connection: "Connection") -> bool:
    """Whether ``procrastinate_jobs`` exists in the current schema."""
    row = _driver_connection(connection).execute(
        "SELECT to_regclass(format('%I.%I', current_schema(), 'procrastinate_jobs')) IS NOT NULL"
    ).fetchone()
    return bool(row[0])


def drop_queue_schema(connection: "Connection") -> None:
    """Drop every Procrastinate object (tables, functions, types) of the current schema."""
    driver = _driver_connection(connection)
    schema = driver.execute("SELECT current_schema()").fetchone()[0]
    pattern = _PREFIX + "%"
    tables = driver.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s", (schema, pattern)
    ).fetchall()
    functions = driver.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %s AND p.proname LIKE %s",
        (schema, pattern),
    ).fetchall()
    types = driver.execute(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = %s AND t.typname LIKE %s AND t.typtype IN ('e', 'c') "
        "AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid AND c.relkind <> 'c')",
        (schema, pattern),
    ).fetchall()
    quote = lambda name: '"' + name.replace('"', '""') + '"'  # noqa: E731
    for (table,) in tables:
        driver.execute(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(table)} CASCADE")
    for (signature,) in functions:
        driver.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
    for (type_name,) in types:
        driver.execute(f"DROP TYPE IF EXISTS {quote(schema)}.{quote(type_name)} CASCADE")
