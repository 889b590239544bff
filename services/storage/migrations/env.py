"""Alembic environment of the generation history.

Run from code (:mod:`services.storage.schema`), it uses the connection handed over in
``config.attributes["connection"]`` and the caller's transaction. Run from the Alembic
command line (``alembic -c services/storage/alembic.ini ...``), it connects to
``sqlalchemy.url`` when the ini sets one, else to the product's ``DATABASE_URL``
setting, with the same engine options as the product.
"""

from __future__ import annotations

from alembic import context

from services.storage.models import Base
from services.storage.schema import include_name

target_metadata = Base.metadata

config = context.config


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    if config.config_file_name is not None:  # the command line: log as its ini says
        from logging.config import fileConfig

        fileConfig(config.config_file_name, disable_existing_loggers=False)
    from services.storage.database import get_engine_unmigrated

    engine = get_engine_unmigrated(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as connection:
        _configure_and_run(connection)


def run_migrations_offline() -> None:
    from services.storage.database import resolve_url

    context.configure(
        url=resolve_url(config.get_main_option("sqlalchemy.url") or None),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
