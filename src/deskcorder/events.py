"""The event model: the one definition of what deskcorder records.

Everything downstream (agent spool, wire format, collector validation,
Parquet files, dataset builder) uses these names and this schema; nothing
else defines an event.

An event is one row of a flat table. Columns that do not apply to a kind are
null (a key event has no coordinates, a click has no key). Identity is
``(session_id, seq)``: ``seq`` counts from 0 inside a capture session with no
gaps, so a missing or repeated event is detectable anywhere in the pipeline.

Timestamps: ``t_mono_ns`` is the capture machine's monotonic clock (used for
every duration: hold times, gaps, double-click windows); ``t_wall_ns`` is UTC
wall-clock time in nanoseconds (used only to place a session in calendar
time, e.g. for partitioning and retention).

pyarrow is imported on first use (``EVENT_SCHEMA``, ``columns_to_table``,
``table_to_events``), never at import: the agent, which runs all day on every
desk, only fills columns with Python values and sends them as MessagePack, and
pyarrow with numpy would be about 38 MiB of its memory.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ._errors import DeskcorderError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "Event",
    "EventKind",
    "EVENT_SCHEMA",
    "InvalidEvents",
    "LOSS_REASONS",
    "MAX_EVENTS_PER_BATCH",
    "events_to_columns",
    "columns_to_table",
    "table_to_events",
    "printable_name",
]


class EventKind(str, enum.Enum):
    KEY_DOWN = "key_down"
    KEY_UP = "key_up"
    MOVE = "move"
    BUTTON_DOWN = "button_down"
    BUTTON_UP = "button_up"
    SCROLL = "scroll"
    FOCUS = "focus"  # the active application/window changed
    PAUSE = "pause"  # capture stopped on purpose (hotkey, tray, CLI); `reason` says why
    RESUME = "resume"
    GAP = "gap"  # the agent lost events here (see LOSS_REASONS); `reason` says why, `lost` how many


@dataclasses.dataclass(slots=True)
class Event:
    session_id: str
    seq: int
    t_mono_ns: int
    t_wall_ns: int
    kind: EventKind
    key: str | None = None  # pynput name: "a", "shift", "ctrl_l", "enter", "backspace"
    char: str | None = None  # the character the key produced, when printable
    vk: int | None = None  # X keysym / platform virtual key code
    button: str | None = None  # "left", "right", "middle", ...
    x: int | None = None
    y: int | None = None
    dx: int | None = None
    dy: int | None = None
    app_process: str | None = None  # focus: process name (from _NET_WM_PID)
    app_class: str | None = None  # focus: WM_CLASS class part, e.g. "XTerm"
    window_title: str | None = None  # focus: _NET_WM_NAME / WM_NAME
    reason: str | None = None  # pause/resume: why
    # focus: the geometry in force, so every coordinate can be normalised to the screen and the window.
    screen_width: int | None = None  # root window size in pixels (the whole X screen, all monitors)
    screen_height: int | None = None
    window_x: int | None = None  # the focused window's client area, root coordinates (may be negative)
    window_y: int | None = None
    window_width: int | None = None
    window_height: int | None = None
    lost: int | None = None  # gap: how many events the agent lost at this point of the session


# (name, Arrow type name, nullable). Field order here is column order everywhere. The types are named
# (pyarrow.type_for_alias) so that defining an event needs no pyarrow.
_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("session_id", "string", False),
    ("seq", "int64", False),
    ("t_mono_ns", "int64", False),
    ("t_wall_ns", "int64", False),
    ("kind", "string", False),
    ("key", "string", True),
    ("char", "string", True),
    ("vk", "int32", True),
    ("button", "string", True),
    ("x", "int32", True),
    ("y", "int32", True),
    ("dx", "int32", True),
    ("dy", "int32", True),
    ("app_process", "string", True),
    ("app_class", "string", True),
    ("window_title", "string", True),
    ("reason", "string", True),
    ("screen_width", "int32", True),
    ("screen_height", "int32", True),
    ("window_x", "int32", True),
    ("window_y", "int32", True),
    ("window_width", "int32", True),
    ("window_height", "int32", True),
    ("lost", "int32", True),
)
assert tuple(f[0] for f in _FIELDS) == tuple(f.name for f in dataclasses.fields(Event))

FIELD_NAMES: tuple[str, ...] = tuple(f[0] for f in _FIELDS)
_FIELD_SET = frozenset(FIELD_NAMES)

# Columns each kind must carry (beyond the always-required identity columns).
_REQUIRED_BY_KIND: dict[EventKind, tuple[str, ...]] = {
    EventKind.KEY_DOWN: ("key",),
    EventKind.KEY_UP: ("key",),
    EventKind.MOVE: ("x", "y"),
    EventKind.BUTTON_DOWN: ("button", "x", "y"),
    EventKind.BUTTON_UP: ("button", "x", "y"),
    EventKind.SCROLL: ("x", "y", "dx", "dy"),
    EventKind.FOCUS: (),
    EventKind.PAUSE: (),
    EventKind.RESUME: (),
    EventKind.GAP: ("reason", "lost"),
}

# Every way the agent can lose an event, the ``reason`` of a GAP event. A fixed set, so a new loss
# path has to be named here before it can be counted (by the agent and, per device, by the collector).
LOSS_REASONS: tuple[str, ...] = (
    "queue_full",  # the writer fell behind and the in-memory queue hit its bound
    "spool_unavailable",  # the spool could not be written for so long that memory ran out
    "callback_error",  # a listener callback failed to describe an input (a bug, never a crash)
)

# Limits that keep one bad client from filling a disk or a string column.
MAX_EVENTS_PER_BATCH = 100_000
_MAX_STRING = {"session_id": 64, "key": 64, "char": 8, "button": 16, "app_process": 256,
               "app_class": 256, "window_title": 1024, "reason": 256}
_MAX_ABS_COORD = 1_000_000
_SIZES = ("screen_width", "screen_height", "window_width", "window_height")


@functools.cache
def _event_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(n, pa.type_for_alias(t), nullable=null) for n, t, null in _FIELDS])


def __getattr__(name: str) -> Any:
    # ``EVENT_SCHEMA`` (the Arrow schema of an event batch) is built on first use: see the module docstring.
    if name == "EVENT_SCHEMA":
        globals()[name] = schema = _event_schema()
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class InvalidEvents(DeskcorderError, ValueError):
    """A batch of events breaks the schema. ``field`` and ``row`` locate the first problem."""

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None):
        where = ""
        if field is not None:
            where = f"field '{field}'" + (f", row {row}" if row is not None else "") + ": "
        super().__init__(where + message)
        self.field = field
        self.row = row
        self.detail = message


def events_to_columns(events: Iterable[Event]) -> dict[str, list[Any]]:
    """Row objects to the columnar dict used on the wire and in the spool."""
    cols: dict[str, list[Any]] = {name: [] for name in FIELD_NAMES}
    appenders = [(cols[name].append, name) for name in FIELD_NAMES]
    for ev in events:
        for append, name in appenders:
            value = getattr(ev, name)
            append(value.value if isinstance(value, EventKind) else value)
    return cols


def _first_row(mask: pa.ChunkedArray | pa.Array) -> int:
    import pyarrow.compute as pc

    return pc.index(mask, True).as_py()


def printable_name(name: Any) -> str:
    """A client-sent name as an answer can show it: itself when printable text, else backslash-escaped.

    A column name may be bytes (MessagePack) or hold a lone UTF-16 surrogate (JSON ``"\\ud800"``),
    which no UTF-8 answer can carry.
    """
    if isinstance(name, str):
        return name if name.isprintable() and _encodes(name) else name.encode("ascii", "backslashreplace").decode()
    return ascii(name)


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


_ACCEPTS = {"string": (str, "text"), "int64": (int, "an integer"), "int32": (int, "an integer")}
_INT_RANGE = {"int64": (-2**63, 2**63 - 1), "int32": (-2**31, 2**31 - 1)}


def _column_array(name: str, typ: pa.DataType, values: list[Any] | tuple[Any, ...]) -> pa.Array:
    """One column's values as an Arrow array of ``typ``, refusing what would need coercion.

    pyarrow converting straight to ``typ`` would store 12.9 as 12, a float t_wall_ns rounded and
    bytes as text; inferring the type first and comparing refuses those instead. bool is an int
    subclass in Python, but pyarrow infers it as bool, so ``True`` is refused too.
    """
    import pyarrow as pa

    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):  # incl. UnicodeEncodeError
        arr = None
    if arr is not None:
        if arr.type == typ:
            return arr
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), typ)
        if typ == pa.int32() and arr.type == pa.int64():
            try:
                return arr.cast(typ)  # a safe cast: out of range raises
            except pa.ArrowInvalid:
                pass
    row, value = _first_wrong(str(typ), values)
    what = _ACCEPTS[str(typ)][1]
    if type(value) is str and typ == pa.string():
        problem = "text that is not valid Unicode (a lone UTF-16 surrogate)"
    elif type(value) is int and typ != pa.string():
        problem = f"{value} (out of the {typ} range)"
    else:
        problem = f"{type(value).__name__} {_short(value)}"
    raise InvalidEvents(f"expected {typ} ({what}) or null, got {problem}", field=name, row=row)


def _first_wrong(typ: str, values: list[Any] | tuple[Any, ...]) -> tuple[int | None, Any]:
    accepted = _ACCEPTS[typ][0]
    low, high = _INT_RANGE.get(typ, (0, 0))
    for row, value in enumerate(values):
        if value is None:
            continue
        if type(value) is not accepted:
            return row, value
        if accepted is int and not low <= value <= high:
            return row, value
        if accepted is str and not _encodes(value):
            return row, value
    return None, None  # pyarrow refused a value this check accepts: name the column only


def _short(value: Any) -> str:
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


def columns_to_table(columns: Mapping[str, Any]) -> pa.Table:
    """Validate a columnar dict of events and return it as an Arrow table.

    Raises InvalidEvents naming the first offending field (and row, where one
    row is to blame). Vectorised so the collector can check hundreds of
    thousands of events per second.
    """
    import pyarrow as pa

    if not isinstance(columns, Mapping):
        raise InvalidEvents("events must be an object mapping column names to arrays")
    # Keys may be bytes or any hashable a decoder allows: no sorting of mixed types.
    unknown = sorted(printable_name(k) for k in columns if k not in _FIELD_SET)
    if unknown:
        raise InvalidEvents(f"unknown column; known columns are {', '.join(FIELD_NAMES)}",
                            field=unknown[0])
    schema = _event_schema()
    n = None
    arrays = []
    for name, typ, nullable in [(field.name, field.type, field.nullable) for field in schema]:
        values = columns.get(name)
        if values is None:
            if not nullable:
                raise InvalidEvents("required column is missing", field=name)
            arrays.append(None)
            continue
        if not isinstance(values, (list, tuple)):
            raise InvalidEvents("must be an array", field=name)
        if n is None:
            n = len(values)
            if n > MAX_EVENTS_PER_BATCH:  # before any column is converted
                raise InvalidEvents(f"{n} events in one batch; the limit is {MAX_EVENTS_PER_BATCH}", field=name)
        elif len(values) != n:
            raise InvalidEvents(f"has {len(values)} values but other columns have {n}", field=name)
        arrays.append(_column_array(name, typ, values))
    assert n is not None  # session_id is required, so at least one column was seen
    if n == 0:
        raise InvalidEvents("a batch must contain at least one event", field="seq")
    arrays = [a if a is not None else pa.nulls(n, type=typ) for a, typ in zip(arrays, schema.types)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    _check_values(table)
    return table


def _check_values(table: pa.Table) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    for name, _, nullable in _FIELDS:
        col = table.column(name)
        if not nullable and col.null_count:
            raise InvalidEvents("must not be null", field=name, row=_first_row(pc.is_null(col)))
        limit = _MAX_STRING.get(name)
        if limit is not None:
            # NUL ends a C string: X11, SQLite tools and the dataset's consumers would each cut it differently.
            nul = pc.match_substring(col, "\x00")
            if pc.any(nul).as_py():
                raise InvalidEvents("must not contain NUL (U+0000)", field=name,
                                    row=_first_row(pc.fill_null(nul, False)))
            too_long = pc.greater(pc.utf8_length(col), limit)
            if pc.any(too_long).as_py():
                raise InvalidEvents(f"longer than {limit} characters", field=name,
                                    row=_first_row(pc.fill_null(too_long, False)))
    for name in ("seq", "t_mono_ns", "t_wall_ns"):
        negative = pc.less(table.column(name), 0)
        if pc.any(negative).as_py():
            raise InvalidEvents("must be >= 0", field=name, row=_first_row(negative))
    for name in _SIZES:
        empty = pc.less(table.column(name), 1)
        if pc.any(empty).as_py():
            raise InvalidEvents("must be at least 1 pixel", field=name, row=_first_row(pc.fill_null(empty, False)))
    for name in ("x", "y", "dx", "dy", "window_x", "window_y", *_SIZES):
        out = pc.greater(pc.abs(pc.cast(table.column(name), pa.int64())), _MAX_ABS_COORD)
        if pc.any(out).as_py():
            raise InvalidEvents(f"absolute value above {_MAX_ABS_COORD}", field=name,
                                row=_first_row(pc.fill_null(out, False)))
    kinds = table.column("kind")
    known = pa.array([k.value for k in EventKind])
    bad_kind = pc.invert(pc.is_in(kinds, value_set=known))
    if pc.any(bad_kind).as_py():
        row = _first_row(bad_kind)
        raise InvalidEvents(f"unknown kind {kinds[row].as_py()!r}; expected one of "
                            f"{', '.join(k.value for k in EventKind)}", field="kind", row=row)
    for kind, required in _REQUIRED_BY_KIND.items():
        if not required:
            continue
        of_kind = pc.equal(kinds, kind.value)
        for name in required:
            missing = pc.and_(of_kind, pc.is_null(table.column(name)))
            if pc.any(missing).as_py():
                raise InvalidEvents(f"required for {kind.value} events", field=name,
                                    row=_first_row(missing))
    _check_gaps(table, kinds)
    # (session_id, seq) is the event's identity: a batch repeating one is corrupt.
    keys = pc.binary_join_element_wise(table.column("session_id"),
                                       pc.cast(table.column("seq"), pa.string()), "\x00")
    if pc.count_distinct(keys).as_py() != table.num_rows:
        counts = pc.value_counts(keys)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        row = _first_row(pc.equal(keys, dup))
        # Named from the row, not by splitting the key: a session id could hold the separator.
        session, seq = table.column("session_id")[row].as_py(), table.column("seq")[row].as_py()
        raise InvalidEvents(f"event (session {session!r}, seq {seq}) appears twice in the batch",
                            field="seq", row=row)


def _check_gaps(table: pa.Table, kinds: pa.ChunkedArray) -> None:
    """A GAP names a known loss reason and a count of at least one; no other kind carries a count."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lost = table.column("lost")
    if lost.null_count == table.num_rows:  # no gap in the batch: the usual case costs one look
        return
    gap = pc.equal(kinds, EventKind.GAP.value)
    unknown = pc.and_(gap, pc.invert(pc.is_in(table.column("reason"), value_set=pa.array(LOSS_REASONS))))
    if pc.any(unknown).as_py():
        raise InvalidEvents(f"a gap's reason is one of {', '.join(LOSS_REASONS)}", field="reason",
                            row=_first_row(unknown))
    too_few = pc.less(lost, 1)
    if pc.any(too_few).as_py():
        raise InvalidEvents("must be at least 1 (events lost at this gap)", field="lost",
                            row=_first_row(pc.fill_null(too_few, False)))
    stray = pc.and_(pc.invert(gap), pc.is_valid(lost))
    if pc.any(stray).as_py():
        raise InvalidEvents("only gap events carry a count of lost events", field="lost", row=_first_row(stray))


def table_to_events(table: pa.Table) -> list[Event]:
    """Arrow rows back to Event objects (tests, small tools; not a hot path)."""
    out = []
    for row in table.select(list(FIELD_NAMES)).to_pylist():
        row["kind"] = EventKind(row["kind"])
        out.append(Event(**row))
    return out
