"""`deskcorder init --data-dir DIR`: create a new store (the one command that does; `serve --init` too)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, EVENTS_URL, fail


def init(
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
    events_url: str | None = EVENTS_URL,
) -> None:
    """Create a new store in DATA_DIR: the folder (0700), its control database and master key.

    Every other command opens only an existing store and fails on a missing one,
    so that a mistyped --data-dir never becomes a new, empty store with a new
    master key. Running it on an existing store changes nothing and says so.
    Back up DATA_DIR/master.key apart from the data (or set DESKCORDER_MASTER_KEY).
    """
    from ..store import EventStore, NotFound, StoreError

    try:
        with EventStore(data_dir, database_url=database_url, create=False) as store:
            recorded = store.events_url
        exists = True
    except NotFound:
        exists = False
    except StoreError as exc:
        raise fail(str(exc)) from exc
    if exists:
        if events_url is not None and events_url != recorded:
            raise fail(f"the store in {data_dir} exists and keeps its event files at {recorded or data_dir / 'events'}"
                       f"; --events-url cannot move them")
        typer.echo(f"a deskcorder store exists in {data_dir} already; nothing changed")
        return
    try:
        with EventStore(data_dir, database_url=database_url, events_url=events_url, create=True) as store:
            where = store.files.location
    except StoreError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"created a deskcorder store in {data_dir} (event files: {where}); next: deskcorder policy set "
               f"FILE --data-dir {data_dir}, then deskcorder serve --data-dir {data_dir}")
