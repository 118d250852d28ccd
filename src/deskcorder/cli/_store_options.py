"""What the admin commands share: the --data-dir/--database-url options (``DESKCORDER_DATA_DIR`` is
--data-dir's default), opening an existing store, the actor, and turning store errors into one clean line
and exit status 2."""

from __future__ import annotations

import contextlib
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import typer

if TYPE_CHECKING:
    from ..store import EventStore

DATA_DIR_ENV = "DESKCORDER_DATA_DIR"
DATA_DIR = typer.Option(Path("deskcorder-data"), "--data-dir", envvar=DATA_DIR_ENV,
                        help="The collector's data dir (events/, control.db, master.key), made by "
                             "`deskcorder init`.")
DATABASE_URL = typer.Option(None, "--database-url",
                            help="Control database URL (default: sqlite:///DATA_DIR/control.db).")
# Only where a store is set up (serve, writer): the first use records it, every other command reads it.
EVENTS_URL = typer.Option(None, "--events-url",
                          help="Where the event files go, recorded in the control database on first use "
                               "(default: DATA_DIR/events): s3://BUCKET/PREFIX, with "
                               "?endpoint_override=HOST:PORT&scheme=http for MinIO and the like (credentials from "
                               "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or file:///PATH.")


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@contextlib.contextmanager
def open_store(data_dir: Path, database_url: str | None) -> Iterator[EventStore]:
    """The existing store, closed afterwards; StoreError anywhere in the block -> 'error: ...' and exit 2.

    Only `deskcorder init` (and `serve --init`) make a store: here a missing one
    is an error naming the path and that command, never a new, empty store
    with a new master key (a mistyped --data-dir should not look like "no employees").
    """
    from ..store import EventStore, StoreError

    try:
        with EventStore(data_dir, database_url=database_url, create=False) as store:
            yield store
    except StoreError as exc:
        raise fail(str(exc)) from exc


def cli_actor() -> str:
    """Who acts, for the audit log: the operating-system user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"
