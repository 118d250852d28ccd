"""Where this store's event files live, recorded once in the control database (``store_settings``).

Every process of a deployment (collectors, writers, the CLI) opens the same
control database, so the first one started with ``--events-url`` records it
and the others find it there: a command run without the option reads and
deletes the right files, and one run with another url is refused instead of
writing (or, worse, "erasing") somewhere else. A store that already holds
batches keeps its location; moving the files is a copy followed by a new
store, not a flag.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from .._errors import Conflict
from ._tables import batches, store_settings

__all__ = ["resolve_events_url"]

_EVENTS_URL = "events_url"


def resolve_events_url(conn: Connection, requested: str | None, default_location: str) -> str | None:
    """The events url in force (None: the data dir), recording ``requested`` on a store without batches."""
    recorded = conn.execute(select(store_settings.c.value).where(store_settings.c.name == _EVENTS_URL)).scalar()
    if requested is None or requested == recorded:
        return recorded
    where = recorded or default_location
    if recorded is not None or conn.execute(select(batches.c.batch_id).limit(1)).first() is not None:
        raise Conflict(f"this store's event files are at {where}, not {requested}: run without --events-url (the "
                       f"control database remembers where they are); a store's files cannot move once it holds "
                       f"batches", field="events_url")
    try:
        with conn.begin_nested():
            conn.execute(store_settings.insert().values(name=_EVENTS_URL, value=requested,
                                                        set_at=dt.datetime.now(dt.timezone.utc)))
    except IntegrityError:  # another process of the fleet recorded one first: the same, or a conflict
        return resolve_events_url(conn, requested, default_location)
    return requested
