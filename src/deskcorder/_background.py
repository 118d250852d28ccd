"""A coroutine run beside an ASGI app for the app's lifetime: started with it, cancelled when it stops.

The collector's listeners of status changes (the fleet's PostgreSQL bus, the
embedded store's status log) are such loops; each app lifespan enters this.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Awaitable, Callable

__all__ = ["running_beside"]


@contextlib.asynccontextmanager
async def running_beside(run: Callable[[], Awaitable[None]], name: str) -> AsyncIterator[None]:
    task = asyncio.ensure_future(run())
    task.set_name(name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
