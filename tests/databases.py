"""The ``database_url`` fixture of the service and job tests: each backend, empty.

Import it into a test module (``from tests.databases import database_url``);
``postgres_url`` is the PostgreSQL case alone. SQLite: a
file under ``tmp_path``; PostgreSQL: a fresh schema of ``TEST_POSTGRES_URL``'s database,
dropped afterwards (skipped with a hint when the variable is unset).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import pytest

from services.storage import dispose_engines
from tests.postgres import fresh_postgres_schema

POSTGRES_ENV = "TEST_POSTGRES_URL"


def postgres_base_url() -> str:
    base = os.environ.get(POSTGRES_ENV, "").strip()
    if not base:
        pytest.skip(f'{POSTGRES_ENV} is not set; start a server with `eval "$(scripts/postgres-test-server.sh start)"`')
    return base


def _close_connections() -> None:
    dispose_engines()
    try:
        from services.jobs.queue import close_queue_clients
    except ModuleNotFoundError:  # pragma: no cover
        return
    close_queue_clients()


@contextlib.contextmanager
def _fresh_postgres() -> Iterator[str]:
    with fresh_postgres_schema(postgres_base_url()) as url:
        try:
            yield url
        finally:
            _close_connections()  # before the schema is dropped


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A URL of an empty database of each backend (nothing created yet)."""
    if request.param == "sqlite":
        try:
            yield f"sqlite:///{tmp_path / 'history' / 'generations.db'}"
        finally:
            _close_connections()
        return
    with _fresh_postgres() as url:
        yield url


@pytest.fixture
def postgres_url():
    """A URL of an empty PostgreSQL schema (skipped without ``TEST_POSTGRES_URL``)."""
    with _fresh_postgres() as url:
        yield url
