"""A store of several people who worked different hours on different days, with the roster that says so.

``roster_store(data_dir)`` enrols ``ROSTER``'s people and stores, for each
shift they worked, one capture session during that shift: a focus, a typed
sentence (key downs and ups, with a rhythm of that person's own), a pointer
approach and click, a drag and a scroll up then down. Each person's
shifts start at their own hour (early, day, late, short), so the wall clock
alone would tell them apart. The days are in the future (the store checks no
clock skew unless asked, and consent given now covers them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import enrol

_DAY0 = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).replace(hour=0, minute=0, second=0,
                                                                            microsecond=0)
DAYS = tuple((_DAY0 + dt.timedelta(days=i)).date().isoformat() for i in range(4))
# (start hour UTC, hours): who works when.
_SHIFTS = {"early": (6, 8), "day": (9, 8), "late": (14, 8), "short": (10, 2)}


@dataclasses.dataclass(frozen=True)
class Shift:
    person: str  # the employee's handle
    day: str  # YYYY-MM-DD, UTC
    start_hour: int
    hours: int


def _roster() -> tuple[Shift, ...]:
    """12 people, each on 2 to 4 of the 4 days, chosen so that few share exactly the same days."""
    kinds = list(_SHIFTS)
    patterns = ["0123", "012", "013", "023", "123", "01", "02", "03", "12", "13", "23", "0123"]
    shifts = []
    for i, days in enumerate(patterns):
        start, hours = _SHIFTS[kinds[i % len(kinds)]]
        shifts += [Shift(f"worker{i:02d}", DAYS[int(d)], start, hours) for d in days]
    return tuple(shifts)


ROSTER: tuple[Shift, ...] = _roster()
PEOPLE: tuple[str, ...] = tuple(sorted({s.person for s in ROSTER}))


def device_of(person: str) -> str:
    return f"dev-{person}"


def _session(shift: Shift, index: int) -> list[Event]:
    """About a minute of work, 30 minutes into the shift."""
    session = uuid.uuid5(uuid.NAMESPACE_URL, f"roster/{shift.person}/{shift.day}").hex
    day = dt.datetime.fromisoformat(shift.day).replace(tzinfo=dt.timezone.utc)
    wall0 = int((day + dt.timedelta(hours=shift.start_hour, minutes=30)).timestamp() * 1e9)
    mono0 = 10**12
    events: list[Event] = []
    t = 0

    def add(kind: EventKind, after_ms: float, **fields: object) -> None:
        nonlocal t
        t += int(after_ms * 1e6)
        events.append(Event(session_id=session, seq=len(events), t_mono_ns=mono0 + t, t_wall_ns=wall0 + t,
                            kind=kind, **fields))  # type: ignore[arg-type]

    add(EventKind.FOCUS, 0, app_class="Notes", app_process="notes", window_title="notes.txt")
    hold, flight = 70 + 9 * index, 110 + 17 * index  # each person types with their own rhythm
    for c in "the quick brown fox":
        key = "space" if c == " " else c
        add(EventKind.KEY_DOWN, flight, key=key, char=c)
        add(EventKind.KEY_UP, hold, key=key, char=c)
    for step in range(8):  # the approach to a click
        add(EventKind.MOVE, 16, x=100 + 20 * step, y=200 + 5 * step)
    add(EventKind.BUTTON_DOWN, 120, button="left", x=240, y=235)
    add(EventKind.BUTTON_UP, 90, button="left", x=240, y=235)
    add(EventKind.BUTTON_DOWN, 600, button="left", x=300, y=300)  # a drag
    for step in range(1, 7):
        add(EventKind.MOVE, 16, x=300 + 25 * step, y=300 + 10 * step)
    add(EventKind.BUTTON_UP, 40, button="left", x=450, y=360)
    for dy in (-1, -1, -1, 1, 1):  # down three steps, then back up two
        add(EventKind.SCROLL, 80, x=450, y=360, dx=0, dy=dy)
    return events


def roster_store(data_dir: Path) -> EventStore:
    """The store holding ``ROSTER``'s sessions (returned open; the caller closes it)."""
    store = EventStore(data_dir)
    for i, person in enumerate(PEOPLE):
        enrol(store, person, device_of(person))
    for shift in ROSTER:
        events = _session(shift, PEOPLE.index(shift.person))
        batch = encode_batch(uuid.uuid4().hex, device_of(shift.person), events_to_columns(events), MSGPACK)
        store.write_batch(decode_batch(batch, MSGPACK))
    return store
