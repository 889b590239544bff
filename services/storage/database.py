"""Engines and sessions of the generation history (SQLite or PostgreSQL).

The database is ``DATABASE_URL`` (default ``sqlite:///data/generations.db``, relative
to the working directory), or the URL last given to :func:`init_db`. The first use of
a database in a process brings its schema up to the newest migration; nothing else
has to be run first.

SQLite runs in WAL mode with a 30 s busy timeout, ``synchronous=NORMAL`` and foreign
keys on, and every transaction starts with ``BEGIN IMMEDIATE`` (it takes the write
lock up front, so two processes never deadlock upgrading a read lock; the busy
timeout makes the second one wait instead of failing with "database is locked").
Read-only sessions (``get_session(readonly=True)``) begin ``DEFERRED`` instead: in WAL
mode they read a snapshot without waiting for, or blocking, a writer.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar, Union

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.pool import StaticPool

from ..errors import StorageError
from . import schema
from .validation import StorageValueError

__all__ = [
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "dispose_engines",
    "get_engine",
    "get_engine_unmigrated",
    "get_session",
    "init_db",
    "run_read",
    "reset_database",
    "resolve_url",
]

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

_SUPPORTED_BACKENDS = ("sqlite", "postgresql")

T = TypeVar("T")


@dataclass
class _Entry:
    engine: Engine
    migrated: bool = False
    _readonly: Optional[Engine] = None
    _fast_reader: Optional[Engine] = None

    @property
    def fast_reader(self) -> Engine:
        """An engine for hot reads (see :func:`run_read`): on SQLite the read-only view of
        this engine; on PostgreSQL a pool of its own in autocommit (each statement its own
        snapshot: no BEGIN/SET/COMMIT round trips), without the ping before each checkout
        (a connection the server dropped is retried instead), and without server-side
        prepared statements: a search's best plan depends on its values (a rare key and a
        narrow tempo range want other indexes than a common one), and the generic plan
        that a prepared statement settles on was measured 10x slower."""
        if self._fast_reader is None:
            if self.engine.dialect.name == "postgresql":
                self._fast_reader = _create_engine(self.engine.url, pre_ping=False,
                                                   connect_args={"prepare_threshold": None}).execution_options(
                    isolation_level="AUTOCOMMIT")
            else:
                self._fast_reader = self.readonly_engine
        return self._fast_reader

    def dispose(self) -> None:
        self.engine.dispose()
        if self._fast_reader is not None and self._fast_reader.engine is not self.engine:
            self._fast_reader.engine.dispose()

    @property
    def readonly_engine(self) -> Engine:
        """The same engine (same pool) whose transactions are read-only."""
        if self._readonly is None:
            options = {schema.READONLY_OPTION: True}
            if self.engine.dialect.name == "postgresql":
                options["postgresql_readonly"] = True
            self._readonly = self.engine.execution_options(**options)
        return self._readonly


_lock = threading.RLock()
_engines: dict[str, _Entry] = {}
_active_url: Optional[str] = None


def _normalize(database_url: Union[str, URL]) -> URL:
    """Parse a URL, pick psycopg 3 for PostgreSQL and make SQLite file paths absolute."""
    if not isinstance(database_url, (str, URL)):
        raise TypeError(f"database_url must be a str; got {type(database_url).__name__} {database_url!r}")
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise StorageValueError(f"not a database URL: {database_url!r}") from None
    backend = url.get_backend_name()
    if backend == "postgres":  # the spelling some hosting platforms use
        url, backend = url.set(drivername="postgresql"), "postgresql"
    if backend not in _SUPPORTED_BACKENDS:
        raise StorageValueError(
            f"unsupported database {backend!r} in {url.render_as_string()!r}; use sqlite or postgresql"
        )
    if backend == "postgresql" and "+" not in url.drivername:  # psycopg 3, not SQLAlchemy's psycopg2
        url = url.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and not _sqlite_in_memory(url) and not url.database.startswith("file:"):
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    return url


def _sqlite_in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _key(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def resolve_url(database_url: Union[str, URL, None] = None) -> str:
    """The URL a call with ``database_url`` uses, normalized (password included)."""
    if database_url is None:
        with _lock:
            database_url = _active_url
    if database_url is None:
        from ..config import get_settings

        database_url = get_settings().database_url
    return _key(_normalize(database_url))


def _sqlite_on_connect(in_memory: bool):
    busy_ms = int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)

    def on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event (below) emit BEGIN, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")  # first: the next ones may wait
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL").fetchall()
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


def _sqlite_begin(connection) -> None:
    readonly = connection.get_execution_options().get(schema.READONLY_OPTION, False)
    connection.exec_driver_sql("BEGIN DEFERRED" if readonly else "BEGIN IMMEDIATE")


def _create_engine(url: URL, pre_ping: bool = True, connect_args: Optional[dict] = None) -> Engine:
    serializer = partial(json.dumps, allow_nan=False)  # NaN is not JSON (PostgreSQL refuses it)
    try:
        if url.get_backend_name() == "sqlite":
            in_memory = _sqlite_in_memory(url)
            options = {}
            if in_memory:
                options["poolclass"] = StaticPool  # one shared connection: one shared database
            elif not url.database.startswith("file:"):
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url,
                json_serializer=serializer,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                **options,
            )
            event.listen(engine, "connect", _sqlite_on_connect(in_memory))
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        # A server that does not answer fails a connection after 10 s instead of hanging it.
        connect_args = {"connect_timeout": 10, **(connect_args or {})}
        return create_engine(url, json_serializer=serializer, pool_pre_ping=pre_ping, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        raise StorageError(
            f"the driver for {_shown(url)!r} is not installed ({exc}); "
            "for PostgreSQL install the extra: pip install 'dgx-music[postgres]'"
        ) from exc


def _entry(database_url: Union[str, URL, None]) -> _Entry:
    if isinstance(database_url, str):
        entry = _engines.get(database_url)  # an already normalized URL: no parsing, no realpath
        if entry is not None:
            return entry
    url = _normalize(resolve_url(database_url))
    key = _key(url)
    with _lock:
        entry = _engines.get(key)
        if entry is None:
            entry = _engines[key] = _Entry(_create_engine(url))
        return entry


def get_engine_unmigrated(database_url: Union[str, URL, None] = None) -> Engine:
    """The cached engine of a database, without touching its schema."""
    return _entry(database_url).engine


def _migrated_entry(database_url: Union[str, URL, None]) -> _Entry:
    entry = _entry(database_url)
    if entry.migrated:
        return entry
    with _lock:
        if not entry.migrated:
            if not schema.is_current(entry.engine):  # Alembic only when a migration must run
                _migrate(entry.engine, schema.upgrade_to_head)
            entry.migrated = True
    return entry


def _migrate(engine: Engine, step) -> None:
    from alembic.util import CommandError

    try:
        step(engine)
    except DBAPIError as exc:
        raise StorageError(f"cannot prepare the database {_shown(engine.url)!r}: {exc.orig}") from exc
    except CommandError as exc:
        raise StorageError(
            f"cannot migrate the database {_shown(engine.url)!r} "
            f"(made by a newer dgx-music?): {exc}"
        ) from exc


def init_db(database_url: Union[str, URL, None] = None) -> Engine:
    """Open the history and bring its schema to the newest migration; returns the engine.

    Idempotent. An explicit ``database_url`` also becomes the database that later
    calls without a URL (``get_session()``) use in this process.
    """
    global _active_url
    engine = _migrated_entry(database_url).engine
    if database_url is not None:
        with _lock:
            _active_url = _key(engine.url)
    return engine


def get_engine(database_url: Union[str, URL, None] = None) -> Engine:
    """The engine of a database whose schema is up to date (see :func:`init_db`)."""
    return _migrated_entry(database_url).engine


def _refuse_writes(session: Session) -> None:
    def before_flush(session, _context, _instances) -> None:
        if session.new or session.dirty or session.deleted:
            raise StorageError("this session is read-only (get_session(readonly=True)); nothing was written")

    def do_orm_execute(state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            raise StorageError("this session is read-only (get_session(readonly=True)); nothing was written")

    event.listen(session, "before_flush", before_flush)
    event.listen(session, "do_orm_execute", do_orm_execute)


@contextmanager
def get_session(database_url: Union[str, URL, None] = None, *, readonly: bool = False) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back on an error.

    Objects keep their loaded values after the block (``expire_on_commit=False``), so
    ``generation.id`` can be read once the session is closed. A database failure is
    re-raised as :class:`~services.errors.StorageError` (the original as its cause).
    ``readonly=True`` is for queries only (history, stats): writing raises
    ``StorageError``, and on SQLite it neither waits for nor blocks writers.
    """
    entry = _migrated_entry(database_url)
    session = Session(entry.readonly_engine if readonly else entry.engine, expire_on_commit=False)
    if readonly:
        _refuse_writes(session)
    try:
        yield session
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        raise StorageError(f"database error: {exc.orig}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def run_read(work: Callable[[Connection], T], database_url: Union[str, URL, None] = None) -> T:
    """``work(connection)`` on a Core connection for hot read paths (the API's status and
    search endpoints): no ORM session, no identity map. On SQLite a read-only transaction
    (``DEFERRED``: a WAL snapshot that never waits for a writer); on PostgreSQL autocommit,
    each statement reading its own snapshot. ``work`` must only read: it is run again once
    if the server had dropped the connection. A database failure is re-raised as
    :class:`~services.errors.StorageError`."""
    entry = _migrated_entry(database_url)
    for attempt in (1, 2):
        try:
            with entry.fast_reader.connect() as connection, connection.begin():
                return work(connection)
        except DBAPIError as exc:
            if attempt == 1 and exc.connection_invalidated:
                continue
            raise StorageError(f"database error: {exc.orig}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def reset_database(database_url: Union[str, URL, None] = None) -> None:
    """Delete every record: undo all migrations, then apply them again."""
    entry = _entry(database_url)
    with _lock:
        _migrate(entry.engine, schema.downgrade_to_base)
        _migrate(entry.engine, schema.upgrade_to_head)
        entry.migrated = True


def dispose_engines() -> None:
    """Close every cached engine and forget the active URL (tests, forked workers)."""
    global _active_url
    with _lock:
        entries = list(_engines.values())
        _engines.clear()
        _active_url = None
    for entry in entries:
        entry.dispose()
