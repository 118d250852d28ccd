"""The UI element under a point, read over AT-SPI's D-Bus: role, name, states, box, ancestors' roles.

``element_at(x, y, pid)`` answers for the application whose process id is
``pid`` (the focused window's ``_NET_WM_PID``), at root-window coordinates,
within ``timeout_s``; ``None`` when there is no accessibility bus, the
application exposes no tree, or it did not answer in time. It never raises
and never waits longer than its timeout, so the agent's observer thread can
call it at every click. ``ElementReader`` is the same with its own connection
(the module-level function shares one).

How an answer is found (facts from the AT-SPI D-Bus spec, at-spi2-core's xml/):

1. the accessibility bus: ``AT_SPI_BUS_ADDRESS``, else ``org.a11y.Bus.GetAddress``
   on the session bus (which starts at-spi-bus-launcher when needed);
2. the application: the registry's root (``org.a11y.atspi.Registry``,
   ``/org/a11y/atspi/accessible/root``) lists every registered application as
   (bus name, path); the bus daemon's ``GetConnectionUnixProcessID`` says
   whose each bus name is (cached: a unique name is never reused);
3. the window: the application's children are its top-level windows; the one
   whose screen extents hold the point, the active one first;
4. the element: ``Component.GetAccessibleAtPoint`` (screen coordinates) from
   the window down, until it answers the null reference
   (``/org/a11y/atspi/null``); there the children's own boxes are checked
   too, for toolkits whose answer lags (Chromium);
5. its role (``GetRoleName``), states (``GetState``: two 32-bit words, bit n
   is state n of AtspiStateType), screen box (``GetExtents``), its ancestors'
   roles along the ``Parent`` chain up to the application (not the hit-test
   path, which may skip levels), and only for an element that is not
   protected, its ``Name``.

Some toolkits build their tree only for assistive technology: GTK 3 always
does; Chromium (and so Electron) did in our tests with
``ACCESSIBILITY_ENABLED=1`` in its environment and not without; Qt documents
``QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1``. This module never switches
accessibility on for the desk: an app without a tree simply gives no element.

A protected element, a password field (role "password text"; AT-SPI has no
separate "protected" state), is returned with ``protected=True`` and no name:
the name is not even asked for.

Why dbus-fast rather than Debian's python3-gi with Atspi: it installs from
PyPI into our virtual environment (pure Python, with optional compiled
speed-ups), where python3-gi would need the system site-packages (and GLib's
main loop in the agent); it is maintained (the Home Assistant Bluetooth stack
runs on it) and its message parsing is fast. Plain method calls are sent
without introspection: the few signatures needed are in the spec.

The D-Bus work runs on an asyncio loop in one daemon thread per reader; a
caller waits on a future with its timeout and leaves the call behind when it
runs late (its late reply is dropped). A failed answer is remembered briefly
(``NEGATIVE_TTL_S`` for an application without a tree or too slow to answer,
``BUS_RETRY_S`` for a missing bus), so a desk without accessibility pays a
dictionary lookup per click, not a D-Bus round trip. dbus-fast itself is
imported on that thread at the first lookup (about 110 ms and 4 MiB), so an
agent that never observes elements never loads it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from ..observations import Box, Element

if TYPE_CHECKING:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

__all__ = ["ElementReader", "element_at", "warm_up", "STATE_NAMES", "PROTECTED_ROLES"]

DEFAULT_TIMEOUT_S = 0.15
NEGATIVE_TTL_S = 2.0  # an application without a tree (or too slow): not asked again for this long
BUS_RETRY_S = 5.0  # no accessibility bus: not looked for again for this long
APPS_TTL_S = 10.0  # a process's applications are listed again after this long (it may have registered another)
MAX_DEPTH = 32  # hit-test steps from the window down; a deeper tree is a cycle or a broken toolkit
MAX_CHILDREN_BY_BOX = 64  # checking children's boxes by hand (see _hit_test) costs one call each: not for a list

_REGISTRY = "org.a11y.atspi.Registry"
_ROOT = "/org/a11y/atspi/accessible/root"
_NULL = "/org/a11y/atspi/null"
_ACCESSIBLE = "org.a11y.atspi.Accessible"
_COMPONENT = "org.a11y.atspi.Component"
_SCREEN = 0  # coord_type: relative to the screen (AtkCoordType ATK_XY_SCREEN)

# AtspiStateType, in enum order: bit n of GetState's 64 bits is STATE_NAMES[n]. Names as AT-SPI spells them.
STATE_NAMES: tuple[str, ...] = (
    "invalid", "active", "armed", "busy", "checked", "collapsed", "defunct", "editable", "enabled",
    "expandable", "expanded", "focusable", "focused", "has-tooltip", "horizontal", "iconified", "modal",
    "multi-line", "multiselectable", "opaque", "pressed", "resizable", "selectable", "selected", "sensitive",
    "showing", "single-line", "stale", "transient", "vertical", "visible", "manages-descendants",
    "indeterminate", "required", "truncated", "animated", "invalid-entry", "supports-autocompletion",
    "selectable-text", "is-default", "visited", "checkable", "has-popup", "read-only",
)
# Roles whose name or box could show a secret: recorded without a name, their box blacked out in the frame.
PROTECTED_ROLES: frozenset[str] = frozenset({"password text"})

_Ref = tuple[str, str]  # (bus name, object path): how AT-SPI names an accessible object


class _CallFailed(Exception):
    """An AT-SPI call answered with a D-Bus error (the object is gone, or lacks the interface)."""


def state_names(words: list[int]) -> list[str]:
    """GetState's bit words as state names, in enum order (bits beyond the known states are skipped)."""
    bits = sum(int(word) << (32 * i) for i, word in enumerate(words))
    return [name for n, name in enumerate(STATE_NAMES) if bits >> n & 1]


class ElementReader:
    """One accessibility-bus connection kept open between lookups; ``close()`` when done (or use ``with``).

    ``session_bus_address`` defaults to ``$DBUS_SESSION_BUS_ADDRESS`` at the first lookup.
    Thread-safe: lookups from several threads queue on the reader's own loop.
    """

    def __init__(self, session_bus_address: str | None = None, *, negative_ttl_s: float = NEGATIVE_TTL_S,
                 bus_retry_s: float = BUS_RETRY_S):
        self._session_address = session_bus_address
        self._negative_ttl_s, self._bus_retry_s = negative_ttl_s, bus_retry_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # Guarded by _lock (callers' threads write them on a timeout):
        self._skip_pid_until: dict[int | None, float] = {}
        self._bus_down_until = 0.0
        self._counts = {"found": 0, "none": 0, "timeout": 0, "skipped": 0}
        # Used only on the loop's thread:
        self._bus: MessageBus | None = None
        self._connecting: asyncio.Task | None = None
        self._pid_of: dict[str, int] = {}  # bus name -> process id
        self._apps_of: dict[int | None, tuple[float, list[_Ref]]] = {}  # pid -> (listed at, its applications)

    # -- public ------------------------------------------------------------------------------
    def element_at(self, x: int, y: int, pid: int | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Element | None:
        """The deepest element at root-window (x, y) in the application of ``pid`` (any application when None)."""
        now = time.monotonic()
        with self._lock:
            if self._closed or now < self._bus_down_until or now < self._skip_pid_until.get(pid, 0.0):
                self._counts["skipped"] += 1
                return None
        loop = self._start()
        future = asyncio.run_coroutine_threadsafe(self._lookup(int(x), int(y), pid), loop)
        try:
            element = future.result(timeout=max(0.0, timeout_s))
        except concurrent.futures.TimeoutError:
            future.cancel()
            with self._lock:
                self._counts["timeout"] += 1
                if self._bus is not None:  # connected, so it was the application that was slow
                    self._skip_pid_until[pid] = time.monotonic() + self._negative_ttl_s
            return None
        except Exception:  # a reader bug must never reach the observer thread: no element, as for no tree
            element = None
        with self._lock:
            self._counts["found" if element is not None else "none"] += 1
        return element

    def warm_up(self) -> None:
        """Import dbus-fast and connect in the background now (returns at once), so the first click is answered
        within its timeout; without it the first lookup or two may come back None while that happens."""
        with self._lock:
            if self._closed:
                return
        asyncio.run_coroutine_threadsafe(self._connected_bus(), self._start())

    def stats(self) -> dict[str, int]:
        """How lookups ended: found, none (no bus, no tree, nothing there), timeout, skipped (remembered none)."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shut_down(), loop).result(timeout=1.0)
        except Exception:  # closing is best effort: the thread is a daemon and the socket closes with it
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=1.0)
        if not thread.is_alive():
            loop.close()

    def __enter__(self) -> "ElementReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop thread -----------------------------------------------------------------------
    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="deskcorder-atspi", daemon=True)
                self._thread.start()
            return self._loop

    async def _shut_down(self) -> None:
        """Disconnect, and end what late lookups left behind (their callers stopped waiting long ago)."""
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _connected_bus(self) -> MessageBus | None:
        """The accessibility bus, connecting once; a caller's timeout does not interrupt the connecting."""
        if self._bus is not None and self._bus.connected:
            return self._bus
        self._bus = None
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            self._bus = await asyncio.shield(self._connecting)
        except asyncio.CancelledError:
            raise
        except Exception:  # no session bus, no launcher, refused: no accessibility on this desk for now
            with self._lock:
                self._bus_down_until = time.monotonic() + self._bus_retry_s
            return None
        self._pid_of.clear()  # a new bus: its unique names are new too
        self._apps_of.clear()
        return self._bus

    async def _connect(self) -> MessageBus:
        from dbus_fast import Message
        from dbus_fast.aio import MessageBus

        address = os.environ.get("AT_SPI_BUS_ADDRESS")  # how at-spi2-core lets a session point at its bus
        if not address:
            session_address = self._session_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")
            if not session_address:
                raise _CallFailed("no session bus (DBUS_SESSION_BUS_ADDRESS is unset)")
            session = await MessageBus(bus_address=session_address).connect()
            try:
                reply = await session.call(Message(destination="org.a11y.Bus", path="/org/a11y/bus",
                                                   interface="org.a11y.Bus", member="GetAddress"))
            finally:
                session.disconnect()
            address = _body(reply)[0]
        return await MessageBus(bus_address=address).connect()

    async def _call(self, ref: _Ref, interface: str, member: str, signature: str = "", body: Any = ()) -> list:
        from dbus_fast import Message

        assert self._bus is not None
        reply = await self._bus.call(Message(destination=ref[0], path=ref[1], interface=interface, member=member,
                                             signature=signature, body=list(body)))
        return _body(reply)

    async def _lookup(self, x: int, y: int, pid: int | None) -> Element | None:
        if await self._connected_bus() is None:
            return None
        apps = await self._applications(pid)
        if not apps:
            with self._lock:
                self._skip_pid_until[pid] = time.monotonic() + self._negative_ttl_s
            return None
        found = await asyncio.gather(*(self._windows_under(app, x, y) for app in apps), return_exceptions=True)
        if any(isinstance(answer, BaseException) for answer in found):
            self._apps_of.pop(pid, None)  # an application went away since it was listed: list again next time
        under = [hit for answer in found if not isinstance(answer, BaseException) for hit in answer]
        if not under:
            return None
        # The active (focused) window first; then the applications' and their windows' order.
        app, window, _ = min(under, key=lambda hit: not hit[2])
        return await self._describe([app, *await self._hit_test(window, x, y)])

    async def _applications(self, pid: int | None) -> list[_Ref]:
        """The registered applications' roots whose connection belongs to ``pid`` (all of them for None)."""
        listed_at, apps = self._apps_of.get(pid, (0.0, []))
        if apps and time.monotonic() - listed_at < APPS_TTL_S:
            return apps
        listed = [tuple(ref) for ref in (await self._call((_REGISTRY, _ROOT), _ACCESSIBLE, "GetChildren"))[0]]
        names = {name for name, _ in listed}
        self._pid_of = {name: p for name, p in self._pid_of.items() if name in names}  # gone apps' names go too
        unknown = [name for name, _ in listed if name not in self._pid_of]
        pids = await asyncio.gather(*(self._call(("org.freedesktop.DBus", "/org/freedesktop/DBus"),
                                                 "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", [name])
                                      for name in unknown), return_exceptions=True)
        for name, answer in zip(unknown, pids):
            self._pid_of[name] = answer[0] if isinstance(answer, list) else -1
        apps = [ref for ref in listed if pid is None or self._pid_of.get(ref[0]) == pid]
        if apps and pid is not None:  # "all applications" changes with every start: not cached
            self._apps_of[pid] = (time.monotonic(), apps)
        return apps

    async def _windows_under(self, app: _Ref, x: int, y: int) -> list[tuple[_Ref, _Ref, bool]]:
        """The application's showing top-level windows whose screen extents hold (x, y): (app, window, active)."""
        windows = [tuple(ref) for ref in (await self._call(app, _ACCESSIBLE, "GetChildren"))[0]]
        facts = await asyncio.gather(*(self._window_facts(w) for w in windows))
        return [(app, w, "active" in states) for w, (box, states) in zip(windows, facts)
                if box is not None and _holds(box, x, y) and ("showing" in states or not states)]

    async def _hit_test(self, window: _Ref, x: int, y: int) -> list[_Ref]:
        """From ``window`` down to the deepest element at (x, y): [window, ..., element].

        Each step asks the toolkit (GetAccessibleAtPoint); where it says "nothing deeper", the element's
        children's boxes are checked too, since some toolkits answer from a cache that lags (Chromium answers
        its web document for a field inside it until its own hit test has run)."""
        path = [window]
        while len(path) < MAX_DEPTH:
            try:
                child = tuple((await self._call(path[-1], _COMPONENT, "GetAccessibleAtPoint", "iiu",
                                                [x, y, _SCREEN]))[0])
            except _CallFailed:  # no Component here: the deepest hit-testable element is the one above
                break
            if child[1] == _NULL or child in path:
                child = await self._child_by_box(path[-1], x, y)
                if child is None or child in path:
                    break
            path.append(child)
        return path

    async def _child_by_box(self, parent: _Ref, x: int, y: int) -> _Ref | None:
        """The last showing child of ``parent`` whose box holds (x, y) (later siblings paint over earlier ones)."""
        try:
            count = (await self._call(parent, "org.freedesktop.DBus.Properties", "Get", "ss",
                                      [_ACCESSIBLE, "ChildCount"]))[0].value
            if not 0 < count <= MAX_CHILDREN_BY_BOX:
                return None
            children = [tuple(ref) for ref in (await self._call(parent, _ACCESSIBLE, "GetChildren"))[0]]
        except _CallFailed:
            return None
        facts = await asyncio.gather(*(self._window_facts(child) for child in children))
        holding = [child for child, (box, states) in zip(children, facts)
                   if box is not None and "showing" in states and _holds(box, x, y)]
        return holding[-1] if holding else None

    async def _window_facts(self, ref: _Ref) -> tuple[tuple[int, int, int, int] | None, list[str]]:
        """Screen box (None without one) and states of a window or any other element."""
        extents, states = await asyncio.gather(self._call(ref, _COMPONENT, "GetExtents", "u", [_SCREEN]),
                                               self._call(ref, _ACCESSIBLE, "GetState"), return_exceptions=True)
        box = tuple(extents[0]) if isinstance(extents, list) else None
        return box, (state_names(states[0]) if isinstance(states, list) else [])

    async def _describe(self, path: list[_Ref]) -> Element | None:
        """The last of ``path`` (application, window, ..., element) as an Element with its ancestors' roles."""
        element = path[-1]
        answers = await asyncio.gather(self._call(element, _ACCESSIBLE, "GetRoleName"),
                                       self._call(element, _ACCESSIBLE, "GetState"),
                                       self._call(element, _COMPONENT, "GetExtents", "u", [_SCREEN]),
                                       self._ancestors(path), return_exceptions=True)
        role_answer, states_answer, extents_answer, ancestors = answers
        if isinstance(extents_answer, BaseException) or isinstance(ancestors, BaseException):
            return None  # gone while being read, or no box to tie to the click: none rather than a guess
        role = role_answer[0] if isinstance(role_answer, list) else "unknown"
        protected = role in PROTECTED_ROLES
        # A role that could not be read might be a password field's: its name is not asked for either.
        wants_name = not protected and isinstance(role_answer, list)
        more = await asyncio.gather(*(self._call(ref, _ACCESSIBLE, "GetRoleName") for ref in ancestors),
                                    *([self._call(element, "org.freedesktop.DBus.Properties", "Get", "ss",
                                                  [_ACCESSIBLE, "Name"])] if wants_name else []),
                                    return_exceptions=True)
        roles = [a[0] if isinstance(a, list) else "unknown" for a in more[:len(ancestors)]]
        name = None
        if wants_name and isinstance(more[-1], list):
            name = more[-1][0].value or None  # "" is AT-SPI's "no name"
        x, y, width, height = extents_answer[0]
        states = state_names(states_answer[0]) if isinstance(states_answer, list) else []
        return Element(role=role, name=name, states=states, box=Box(x, y, width, height), ancestors=roles,
                       protected=protected)

    async def _ancestors(self, path: list[_Ref]) -> list[_Ref]:
        """The element's parents, nearest first, up to the application (``path[0]``).

        The hit test's path is not always the parent chain (Chromium answers a field inside its document straight
        from the window), so each step's Parent is read: all of the path's in one round, then one at a time only
        through levels the hit test skipped."""
        known = await asyncio.gather(*(self._parent(ref) for ref in path[1:]))
        parent_of = dict(zip(path[1:], known))
        chain: list[_Ref] = []
        ref = parent_of[path[-1]]
        while ref is not None and ref[1] != _NULL and ref not in chain and len(chain) < MAX_DEPTH:
            chain.append(ref)
            if ref == path[0]:
                break
            ref = parent_of[ref] if ref in parent_of else await self._parent(ref)
        return chain

    async def _parent(self, ref: _Ref) -> _Ref | None:
        try:
            return tuple((await self._call(ref, "org.freedesktop.DBus.Properties", "Get", "ss",
                                           [_ACCESSIBLE, "Parent"]))[0].value)
        except _CallFailed:
            return None


def _holds(box: tuple[int, int, int, int] | list[int], x: int, y: int) -> bool:
    return box[0] <= x < box[0] + box[2] and box[1] <= y < box[1] + box[3]


def _body(reply: "Message") -> list:
    from dbus_fast import MessageType

    if reply.message_type == MessageType.ERROR:
        raise _CallFailed(f"{reply.error_name}: {reply.body[0] if reply.body else ''}")
    return reply.body


_shared: ElementReader | None = None
_shared_address: str | None = None
_shared_lock = threading.Lock()


def _shared_reader() -> ElementReader:
    """One reader per session bus address: a new ``$DBUS_SESSION_BUS_ADDRESS`` gets a new one."""
    global _shared, _shared_address
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    with _shared_lock:
        if _shared is None or address != _shared_address:
            if _shared is not None:
                _shared.close()
            _shared, _shared_address = ElementReader(address), address
        return _shared


def element_at(x: int, y: int, pid: int | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Element | None:
    """The UI element at root-window (x, y) in the application of ``pid``, or None; never raises, never waits past
    ``timeout_s``. Uses the module's shared reader."""
    return _shared_reader().element_at(x, y, pid, timeout_s)


def warm_up() -> None:
    """Connect the shared reader in the background now (see ``ElementReader.warm_up``)."""
    _shared_reader().warm_up()


@atexit.register
def _close_shared() -> None:
    """Close the shared reader (at exit, or when an agent stops); the next lookup opens a new one."""
    global _shared, _shared_address
    with _shared_lock:
        reader, _shared, _shared_address = _shared, None, None
    if reader is not None:
        reader.close()
