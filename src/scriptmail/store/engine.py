"""Opening the database: one engine per process, SQLite tuned for durable group commits."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import Insert


def open_engine(url: str, pool_size: int = 8) -> Engine:
    """Create the engine; for SQLite, WAL with a full fsync at every commit (a 250 is durable)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "rollback", _forget_announced)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is issued by the "begin" listener
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLite's own lower() changes ASCII letters only; PostgreSQL's every letter. Addresses with
    # non-ASCII local parts (SMTPUTF8) must match the same way on both stores.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin(connection) -> None:
    # pysqlite's own transaction handling is off (see _sqlite_pragmas). A writer asks for
    # BEGIN IMMEDIATE so it takes the write lock up front and cannot deadlock on upgrade;
    # readers use a plain BEGIN and, in WAL mode, never wait for the writer.
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _forget_announced(connection) -> None:
    # Notices announced in a transaction that rolled back must not go out with the next one.
    from scriptmail.store import bus

    bus.take_announced(connection)


def for_writing(engine: Engine) -> Engine:
    """The engine to use for write transactions (on SQLite: they take the lock at BEGIN)."""
    return engine.execution_options(sqlite_immediate=True) if engine.dialect.name == "sqlite" else engine


def upsert(connection: Connection, table: Table) -> Insert:
    """An INSERT that can say ON CONFLICT (DO NOTHING / DO UPDATE): both stores have it, each in
    its own dialect's construct."""
    return (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(table)
