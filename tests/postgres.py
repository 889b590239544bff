"""A throwaway PostgreSQL schema, for the tests and the storage benchmark."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator, Optional


@contextmanager
def fresh_postgres_schema(base_url: str, prefix: str = "dgx_test", time_zone: Optional[str] = None) -> Iterator[str]:
    """A URL whose connections live in a new, empty schema of ``base_url``'s database; the
    schema is dropped after (pooled connections into it are closed first). ``time_zone``
    sets the sessions' TimeZone."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from services.storage import dispose_engines
    from services.storage.database import resolve_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(resolve_url(base_url))
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        options = f"-csearch_path={name}" + (f" -cTimeZone={time_zone}" if time_zone else "")
        url = make_url(resolve_url(base_url)).update_query_dict({"options": options})
        yield url.render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()
