"""Every collector of a fleet hears every status change: PostgreSQL LISTEN/NOTIFY on the control database.

An agent holds its status request on whichever collector the balancer gave it
(``collect/_status_push.py``); the change it must hear (a withdrawal in the
portal, a pause, a new policy, a revocation) may be made on any other
collector, or by the CLI on an admin's host. All of them write the shared
control database, and the store sends the change's key with ``pg_notify``
inside the very transaction that makes it (``EventStore.STATUS_CHANNEL``), so
PostgreSQL delivers it to every listener when, and only if, it commits.

Why PostgreSQL and not NATS (which fleet collectors also reach): the change
and its announcement commit together, whoever made it; a CLI command or a
collector that crashed right after its commit cannot leave the fleet
unaware, and there is no second system to keep in step.

``PostgresStatusBus`` is one extra connection per collector (``LISTEN``,
psycopg 3 async, autocommit) and one task reading its notifications on the
event loop; it costs nothing while nothing changes. Lost, it reconnects with
backoff (0.5 s doubling to ``RECONNECT_MAX_S``); while it is down the
notifier trusts no remembered answer (every renewal reads the status), and
once it is back every held request reads its status again, since
notifications sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol

from sqlalchemy.engine import make_url

from .._background import running_beside

if TYPE_CHECKING:
    from ..store import EventStore

__all__ = ["PostgresStatusBus"]

log = logging.getLogger("deskcorder.collect")


class StatusNotifier(Protocol):
    """What the bus wakes (``collect/_status_push.StatusNotifier``), called on the event loop."""

    trust_cache: bool

    def wake(self, key: str) -> None: ...

    def wake_everyone(self) -> None: ...


class PostgresStatusBus:
    RECONNECT_MAX_S = 10.0

    def __init__(self, database_url: str, store: EventStore, notifier: StatusNotifier):
        # SQLAlchemy's URL (postgresql+psycopg://...) as libpq's: the same server, user and options.
        self._conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._shown = make_url(database_url).render_as_string(hide_password=True)
        self._store = store
        self._notifier = notifier
        self.listening = asyncio.Event()  # set while LISTEN is in force (tests wait on it)

    def lifespan(self, _app: Any) -> contextlib.AbstractAsyncContextManager[None]:
        return running_beside(self._run, "deskcorder-status-bus")

    async def _run(self) -> None:
        import psycopg  # the fleet extra

        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {self._store.STATUS_CHANNEL}")
                    self._notifier.trust_cache = True
                    self._notifier.wake_everyone()  # what was sent while we did not listen is lost: read again
                    self.listening.set()
                    if delay > 0.5:
                        log.warning("status bus: listening on %s again", self._shown)
                    delay = 0.5
                    async for notification in conn.notifies():
                        key = self._store.status_change_from(notification.payload)
                        if key is not None:  # None: our own, already heard in process
                            self._notifier.wake(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away, or refused us: agents fall back to reading
                log.warning("status bus: not listening on %s (%s); agents hear changes made on other collectors "
                            "at their next renewal until it is back; retrying in %.1f s", self._shown, exc, delay)
            finally:
                self._notifier.trust_cache = False
                self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(self.RECONNECT_MAX_S, delay * 2)
