"""Status pushed, not polled: ``GET /v1/devices/{id}/status?wait=S&since=V`` held until the answer changes.

Every status answer carries ``status_version`` (a hash of the answer itself).
An agent that sends it back as ``since`` with ``wait`` (seconds) gets

    200 the new answer, at once, when the device's status is no longer ``since``
        (or as soon as it changes while held);
    304 (``ETag: "<since>"``, no body) when nothing changed for ``wait``
        seconds (at most ``MAX_WAIT_S``; held a little less, at random, so
        agents that connected together do not come back together).

Without ``wait`` it is the plain poll it always was, which an old agent keeps
using; an old collector ignores ``wait`` and ``since`` and answers at once,
without ``status_version``, which tells a new agent to poll (``capture/_status.py``).

What wakes a held request: ``StatusNotifier``, one per collector process,
keyed by device and by employee. The store announces every committed change
of someone's status (consent acts, pauses, a new policy, revocations,
erasures: ``EventStore.on_status_change``, from whatever worker thread made it);
the notifier hands the key to the event loop, which wakes only the requests
of that device or employee (all of them for a new policy), and they read the
status again. An idle held request costs nothing until its ``wait`` runs
out: no timer of its own fires before, and nothing polls the database.

Renewals (the 304s) are what idle agents cost. With a fleet bus
(``fleet/_status_bus.py``: PostgreSQL LISTEN/NOTIFY, which hears every writer
of the control database, the CLI on another host included) the last answer
per device is trusted until a change is announced, and so is its credential
once the store accepted it (until the device is revoked: then its held request
ends with a 304 and the store checks the renewal, 403), so a renewal needs
neither a worker thread nor the database. An embedded collector on SQLite
hears changes made by other processes (the CLI on its host) through the
store's status log (``store/_db/_status_log.py``, watched by
``StatusLogWatch`` five times a second); a remembered answer (and a checked
credential) still stands for at most ``StatusNotifier.UNHEARD_FOR_S`` (120 s),
in case a writer could not append to the log (the collector refuses every
event stamped after a withdrawal from its commit on, whatever the agent heard).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import random
import time
from typing import Any, Awaitable, Callable

from fastapi.responses import Response

from .._background import running_beside

__all__ = ["StatusNotifier", "StatusLogWatch", "MAX_WAIT_S", "status_version"]

MAX_WAIT_S = 60.0  # the longest a request is held: below the 60 s idle timeout of most balancers and proxies
_JITTER = 0.15  # held between (1 - _JITTER) and 1 times the wait


def status_version(answer: dict[str, Any]) -> str:
    """The version of a status answer: a hash of what it says, so equal answers have equal versions everywhere
    (every collector of a fleet computes the same one)."""
    return hashlib.blake2b(json.dumps(answer, sort_keys=True, separators=(",", ":")).encode(),
                           digest_size=8).hexdigest()


@dataclasses.dataclass(frozen=True)
class _Answer:
    version: str
    body: bytes  # the JSON answer, status_version included
    computed_at: int  # the notifier's generation when the read began
    read_at: float  # time.monotonic() of the read
    spread: float  # 0.5-1: how much of its trust period it gets, so that reads made together expire apart


class StatusNotifier:
    """Holds status requests until a change of theirs is announced; see the module docstring.

    ``trust_cache``: a renewal may answer from the last read until a change is announced (a fleet bus hears
    every change); otherwise for at most ``UNHEARD_FOR_S``.
    """

    # With a bus, a read is still redone this long after the last one, in case a notification was lost
    # (a bus reconnect wakes everyone anyway; this bounds anything else).
    TRUSTED_FOR_S = 3600.0
    # Without one (SQLite), what another process changed (the CLI on the collector's host) is heard only
    # by reading: at the first renewal this long after the last read. Every renewal reading the status
    # costs the collector as much as the old poll (benchmarks/status_push.py).
    UNHEARD_FOR_S = 120.0

    def __init__(self, *, trust_cache: bool = False):
        self.trust_cache = trust_cache
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gen = 0  # bumped by every change announced
        self._all_gen = 0  # generation of the last change of everyone's status
        self._key_gen: dict[str, int] = {}  # "device:<id>" / "employee:<id>" -> generation of its last change
        self._answers: dict[str, _Answer] = {}  # device_id -> its last read
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}  # key ("all" too) -> held requests
        self._reading: dict[str, asyncio.Future[dict[str, Any]]] | None = None  # the next coalesced read
        # device_id -> (SHA-256 of its secret, employee_id, time.monotonic() checked): a renewal's credential
        # check without a worker thread or the database. Dropped when the device is revoked.
        self._credentials: dict[str, tuple[str, str, float]] = {}
        self.held = 0  # requests held now (for benchmarks and the log)

    # -- announcements (any thread) -------------------------------------------------------------

    def changed(self, key: str) -> None:
        """``key``'s status changed (``employee:<id>``, ``device:<id>`` or ``all``): wake its held requests.

        Safe from any thread (the store calls it from the worker thread that committed the change)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._apply, key)
            except RuntimeError:  # the loop closed meanwhile: nobody is held
                pass

    def _apply(self, key: str) -> None:
        self._gen += 1
        if key == "all":
            self._all_gen = self._gen
            self._answers.clear()
            woken = list(self._waiting.get("all", ()))
        else:
            self._key_gen[key] = self._gen
            woken = list(self._waiting.get(key, ()))
            if key.startswith("device:"):  # a revocation: its credential is checked against the store again
                self._credentials.pop(key.removeprefix("device:"), None)
        for future in woken:
            if not future.done():
                future.set_result(None)

    # -- held requests (the event loop) -----------------------------------------------------------

    async def answer(self, device_id: str, employee_id: str, since: str | None, wait_s: float,
                     read: Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]) -> Response:
        """The device's answer once it differs from ``since``, or a 304 after about ``wait_s`` seconds.

        ``read(device_ids)``: their status answers from the store (off the event loop), by device id."""
        loop = asyncio.get_running_loop()
        self._bind(loop)
        deadline = loop.time() + min(wait_s, MAX_WAIT_S) * (1.0 - _JITTER * random.random())
        keys = (f"device:{device_id}", f"employee:{employee_id}", "all")
        while True:
            answer = self._fresh(device_id, keys)
            if answer is not None and answer.version != since:
                # A remembered answer that differs from what the agent holds is confirmed by a read first:
                # the agent's may be the newer one (a plain poll read a change another process made before
                # the status log told this collector), and an agent must never be sent back to older rules.
                self._answers.pop(device_id, None)
                answer = None
            if answer is None:
                started = self._gen
                body = await self._read(loop, device_id, read)
                answer = self._remember(device_id, keys, body, started)
                if answer is None:
                    continue  # a change was announced while we read: read again
            if answer.version != since:
                return Response(answer.body, media_type="application/json", headers={"ETag": f'"{answer.version}"'})
            if loop.time() >= deadline:
                return Response(status_code=304, headers={"ETag": f'"{since}"'})
            await self._hold(loop, keys, deadline)
            if device_id not in self._credentials:  # revoked (or a new loop): its renewal checks the credential
                return Response(status_code=304, headers={"ETag": f'"{since}"'})

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # first request, or a new loop (a test client): nothing held belongs to it
            self._loop, self._answers, self._waiting, self._reading = loop, {}, {}, None
            self._credentials = {}

    async def _read(self, loop: asyncio.AbstractEventLoop, device_id: str,
                    read: Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]) -> dict[str, Any]:
        """One device's answer, read with every other asked for in the same turn of the loop: a new policy
        wakes every held request at once, and 10,000 reads of one row each would take seconds."""
        if self._reading is None:
            self._reading = {}
            loop.call_soon(lambda: asyncio.ensure_future(self._read_all(read)))
        future = self._reading.get(device_id)
        if future is None:
            future = self._reading[device_id] = loop.create_future()
        return await asyncio.shield(future)

    async def _read_all(self, read: Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]) -> None:
        asked, self._reading = self._reading or {}, None
        try:
            answers = await read(list(asked))
        except Exception as exc:  # a store failure (503): every request of the batch answers it
            for future in asked.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for device_id, future in asked.items():
            if not future.done():
                future.set_result(answers[device_id])

    def checked_device(self, device_id: str, secret: str) -> str | None:
        """The employee of ``device_id`` when its credential was checked against the store before (and nothing
        announced about it since): a renewal costs no worker thread. None: check it against the store."""
        self._bind(asyncio.get_running_loop())
        known = self._credentials.get(device_id)
        if known is None or known[2] < time.monotonic() - self._trusted_for():
            return None
        if not hmac.compare_digest(known[0], hashlib.sha256(secret.encode()).hexdigest()):
            return None
        return known[1]

    def credential_checked(self, device_id: str, secret: str, employee_id: str) -> None:
        """The store accepted this device's credential (on the event loop, after the check)."""
        # Checked at a random moment of the last half of the trust period, for the same reason as _Answer.spread.
        checked = time.monotonic() - self._trusted_for() * random.random() / 2
        self._credentials[device_id] = (hashlib.sha256(secret.encode()).hexdigest(), employee_id, checked)

    def _fresh(self, device_id: str, keys: tuple[str, ...]) -> _Answer | None:
        answer = self._answers.get(device_id)
        if answer is None or self._changed_since(answer.computed_at, keys):
            return None
        return None if answer.read_at < time.monotonic() - self._trusted_for() * answer.spread else answer

    def _trusted_for(self) -> float:
        return self.TRUSTED_FOR_S if self.trust_cache else self.UNHEARD_FOR_S

    def _changed_since(self, generation: int, keys: tuple[str, ...]) -> bool:
        return self._all_gen > generation or any(self._key_gen.get(k, 0) > generation for k in keys[:2])

    def _remember(self, device_id: str, keys: tuple[str, ...], answer: dict[str, Any], started: int) -> _Answer | None:
        if self._changed_since(started, keys):
            return None
        version = status_version(answer)
        body = json.dumps({**answer, "status_version": version}, separators=(",", ":")).encode()
        remembered = _Answer(version, body, started, time.monotonic(), 0.5 + random.random() / 2)
        self._answers[device_id] = remembered
        return remembered

    async def _hold(self, loop: asyncio.AbstractEventLoop, keys: tuple[str, ...], deadline: float) -> None:
        future: asyncio.Future[None] = loop.create_future()
        for key in keys:
            self._waiting.setdefault(key, set()).add(future)
        # One timer handle per held request, in the loop's heap: it costs nothing until it fires.
        timer = loop.call_at(deadline, _release, future)
        self.held += 1
        try:
            await future
        finally:
            self.held -= 1
            timer.cancel()
            for key in keys:
                held = self._waiting.get(key)
                if held is not None:
                    held.discard(future)
                    if not held and key != "all":
                        del self._waiting[key]

    def wake(self, key: str) -> None:
        """``changed`` for code on the event loop (the fleet's bus)."""
        self._apply(key)

    def wake_everyone(self) -> None:
        """On the loop: treat every status as changed (a bus that reconnected may have missed announcements)."""
        self._apply("all")


def _release(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class StatusLogWatch:
    """An embedded (SQLite) collector hears status changes made by other processes (the CLI on its host).

    ``log``: the store's ``StatusLog``. Looks at it every ``EVERY_S`` on the event loop (one ``os.stat``
    while nothing changed) and wakes the keys other processes wrote, so a held request does not stand on
    an answer a ``deskcorder policy set`` or ``consent withdraw`` has made wrong.
    """

    EVERY_S = 0.2

    def __init__(self, log: Any, notifier: StatusNotifier):
        self._log = log
        self._notifier = notifier

    def lifespan(self, _app: Any) -> contextlib.AbstractAsyncContextManager[None]:
        self._log.start()
        return running_beside(self._run, "deskcorder-status-log")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.EVERY_S)
            try:
                keys = self._log.new_keys()
            except OSError:  # unreadable for a moment: the next look, or UNHEARD_FOR_S, catches up
                continue
            for key in keys:
                self._notifier.wake(key)
