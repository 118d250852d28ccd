"""Alembic environment for the control database.

The store runs migrations itself when it opens (see ``_db/_migrate.py``) and hands
its connection over in ``config.attributes["connection"]``; there is no
alembic.ini. To write a new revision, point a Config at this folder from Python
(``_migrate.alembic_config(url)``) and call ``alembic.command.revision(cfg,
message, autogenerate=True)``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from deskcorder.store._db._tables import metadata

config = context.config


def _configure(**kwargs: Any) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds the
    # table there and is a plain ALTER on PostgreSQL.
    context.configure(target_metadata=metadata, render_as_batch=True, compare_type=True, **kwargs)


def run_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
               dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection in config.attributes['connection'] and no sqlalchemy.url option")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
