"""The batch wire format shared by the agent's uploader and the collector.

A batch is one object::

    {"v": 1, "batch_id": "<client-chosen, 8-128 chars [A-Za-z0-9_.:-]>",
     "device_id": "<8-128 chars, same alphabet>",
     "events": {"session_id": [...], "seq": [...], ...}}

``events`` is columnar (one array per column of ``deskcorder.events``):
column arrays decode and validate at memory speed, where a list of
per-event objects would cost a Python object per field.

Encodings: MessagePack (``Content-Type: application/msgpack``, what the agent
sends) or JSON (``application/json``, handy with curl). Both carry the same
structure. The batch id makes uploads idempotent: the collector stores a
batch id once and acknowledges repeats without storing them again.

Decoding is bounded before anything is expanded: a body costs at most what
the largest valid batch costs (``MAX_EVENTS_PER_BATCH`` events in every
column), however it is built. A 32 MiB MessagePack body of empty arrays once
took a collector from 184 MB to 2.3 GB; now no array may hold more than
``MAX_EVENTS_PER_BATCH`` values, no object more than a few keys beyond the
columns, and a body no more arrays or objects than such an object of columns
has: more is refused as soon as the decoder meets it (MessagePack) or by
counting before parsing (JSON). Values are never coerced: ``seq: 5.0``,
``"v": true`` and a float timestamp are refused naming the field.

Inside a fleet (collector -> NATS JetStream -> writer, never from an agent) a
batch the collector has decoded and checked travels as an Arrow IPC stream
(``ARROW_STREAM``, ``encode_checked`` / ``decode_checked``): the events table
with the ids and the content hash in its schema metadata. The writer reads it
back at memory speed instead of unpacking MessagePack and rebuilding every
column; it still checks every value again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Mapping

import msgpack

from ._errors import DeskcorderError
from .events import (FIELD_NAMES, MAX_EVENTS_PER_BATCH, InvalidEvents, _check_values, _event_schema,
                     columns_to_table, printable_name)

if TYPE_CHECKING:  # pyarrow is imported where a batch is decoded: the agent only encodes, with msgpack
    import pyarrow as pa

__all__ = ["Batch", "InvalidBatch", "UnreadableBatch", "MSGPACK", "JSON", "ARROW_STREAM", "WIRE_VERSION",
           "batch_json_schema", "decode_batch", "encode_batch", "encode_checked", "decode_checked"]

WIRE_VERSION = 1
MSGPACK = "application/msgpack"
JSON = "application/json"
ARROW_STREAM = "application/vnd.apache.arrow.stream"  # fleet-internal only: the HTTP API does not take it
_ID = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_TOP_LEVEL = ("v", "batch_id", "device_id", "events")

# Structure limits (see the module docstring): a valid batch is two objects (the batch and its
# events) and one array per column, no array holds more values than a batch has events. JSON is counted before parsing, MessagePack while it is unpacked.
_MAX_KEYS = len(FIELD_NAMES) + 8  # room to name a few unknown columns instead of failing to decode
_MAX_CONTAINERS = 2 + _MAX_KEYS
_MAX_VALUES = (len(FIELD_NAMES) + 1) * MAX_EVENTS_PER_BATCH  # commas bound the values a JSON body holds
_MAX_JSON_CONTAINERS = MAX_EVENTS_PER_BATCH  # see _check_json_structure
_COUNT_STEP = 1 << 20
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes included
# A run of up to 4096 strings with what lies before each; possessive (*+): no backtracking, linear time.
_STRINGS_AHEAD = re.compile(rb'(?:[^"]*+"[^"\\]*+(?:\\.[^"\\]*+)*+"){1,4096}+')


class InvalidBatch(DeskcorderError, ValueError):
    """The request body is not a valid batch; the message says which part and why."""

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None):
        super().__init__(message)
        self.field = field
        self.row = row


class UnreadableBatch(InvalidBatch):
    """The body could not be decoded at all (not MessagePack/JSON, or nested absurdly deep)."""


@dataclasses.dataclass(frozen=True)
class Batch:
    batch_id: str
    device_id: str
    events: pa.Table
    content_hash: str  # sha256 of the event columns, to tell a true repeat from a reused id


def encode_batch(batch_id: str, device_id: str, columns: Mapping[str, list[Any]],
                 content_type: str = MSGPACK) -> bytes:
    body = {"v": WIRE_VERSION, "batch_id": batch_id, "device_id": device_id, "events": dict(columns)}
    if content_type == JSON:
        return json.dumps(body, separators=(",", ":")).encode()
    return msgpack.packb(body, use_bin_type=True)


def decode_batch(body: bytes, content_type: str) -> Batch:
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        if media in (MSGPACK, "application/x-msgpack"):
            obj = _unpack_msgpack(body)
        elif media == JSON:
            obj = _load_json(body)
        else:
            raise InvalidBatch(f"unsupported Content-Type {content_type!r}; "
                               f"send {MSGPACK} or {JSON}", field="Content-Type")
    except InvalidBatch:
        raise
    except (ValueError, RecursionError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise UnreadableBatch(f"body is not valid {media}: {exc}", field="body") from exc
    if not isinstance(obj, dict):
        raise InvalidBatch("body must be an object with v, batch_id, device_id and events",
                           field="body")
    version = obj.get("v")
    if type(version) is not int or version != WIRE_VERSION:  # not True, not 1.0: both equal 1 in Python
        raise InvalidBatch(f"unsupported wire version {ascii(version)[:40]} ({type(version).__name__}); this collector "
                           f"speaks v={WIRE_VERSION} (an integer)", field="v")
    unknown = sorted(printable_name(k) for k in obj if k not in _TOP_LEVEL)
    if unknown:
        raise InvalidBatch(f"unknown top-level field '{unknown[0]}'", field=unknown[0])
    for name in ("batch_id", "device_id"):
        value = obj.get(name)
        if not isinstance(value, str) or not _ID.fullmatch(value):  # fullmatch: "$" lets a final newline in
            raise InvalidBatch(f"{name} must be 8-128 characters of A-Z a-z 0-9 _ . : -, "
                               f"got {ascii(value)[:140]}", field=name)
    events = obj.get("events")
    try:
        table = columns_to_table(events)
    except InvalidEvents as exc:
        field = f"events.{exc.field}" if exc.field else "events"
        raise InvalidBatch(f"events: {exc}", field=field, row=exc.row) from exc
    return Batch(obj["batch_id"], obj["device_id"], table, content_hash(table))


def content_hash(table: pa.Table) -> str:
    """sha256 of a checked events table's values: the same for the same events in either encoding.

    Hashes the Arrow buffers ``columns_to_table`` built (lengths, validity bits, offsets, values) rather than
    re-packing the batch with MessagePack (``legacy_content_hash``; 15% of a collector's ingest CPU, now ~1%).
    The same values give the same buffers whichever body they came from: pyarrow's builders write zeros
    under nulls, and an all-null or omitted column hashes as its length alone.
    """
    import pyarrow as pa

    digest = hashlib.sha256(b"deskcorder events v2\0")
    for name, column in zip(table.column_names, table.columns):
        array = column.chunk(0) if column.num_chunks == 1 else pa.concat_arrays(column.chunks)
        if array.offset:  # a slice: its buffers start before its first value
            array = pa.concat_arrays([pa.array([], array.type), array])  # a copy from offset 0
        n, nulls = len(array), array.null_count
        digest.update(b"%s\0%d\0%d\0" % (name.encode(), n, nulls))
        if nulls == n:
            continue
        validity, *rest = array.buffers()
        if nulls:
            bits = validity.to_pybytes()[:(n + 7) // 8]
            digest.update(bits[:-1] + bytes([bits[-1] & (0xFF >> (-n % 8))]))  # bits past n are not values
        if pa.types.is_string(array.type):
            offsets, data = rest
            end = int.from_bytes(offsets[4 * n:4 * n + 4], "little", signed=True)
            digest.update(memoryview(offsets)[:4 * (n + 1)])
            digest.update(memoryview(data)[:end])
        else:
            width = array.type.bit_width // 8
            digest.update(memoryview(rest[0])[:width * n])
    return digest.hexdigest()


def legacy_content_hash(table: pa.Table) -> str:
    """The content hash collectors stored before ``content_hash`` (sha256 of the events re-packed with
    MessagePack), as the agent sends them (every column, in schema order): the store compares a repeat's
    ``content_hash`` with it when the stored hash differs, so a batch stored before the change and retried
    after it is still a duplicate."""
    columns = {name: table.column(name).to_pylist() for name in FIELD_NAMES}
    return hashlib.sha256(msgpack.packb(columns, use_bin_type=True)).hexdigest()


def _unpack_msgpack(body: bytes) -> Any:
    """MessagePack to Python objects, refusing any structure a batch cannot have before building it."""
    containers = [0]

    def counted(value: Any) -> Any:
        containers[0] += 1
        if containers[0] > _MAX_CONTAINERS:  # raised at the first array too many: nothing more is built
            raise InvalidBatch(f"body holds more than {_MAX_CONTAINERS} arrays and objects; a batch is an "
                               f"object with an events object holding one array per column, whose values "
                               f"are text, integers or null", field="events")
        return value

    def mapping(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        return counted(_no_repeated_keys(pairs))

    return msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True, list_hook=counted,
                           object_pairs_hook=mapping, max_array_len=MAX_EVENTS_PER_BATCH, max_map_len=_MAX_KEYS,
                           max_ext_len=0)  # ext types (timestamps too) are never part of a batch


def _load_json(body: bytes) -> Any:
    """JSON to Python objects, after counting (outside strings) the arrays, objects and values it would build."""
    _check_json_structure(body)

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")

    # Fractions stay floats so that the event model refuses them by name instead of truncating them.
    return json.loads(body, object_pairs_hook=_no_repeated_keys, parse_constant=no_constant)


def _check_json_structure(body: bytes) -> None:
    # Byte counts first (memchr speed). They include brackets and commas inside strings, so they are
    # upper bounds; only a body over a bound is counted again outside its strings (rare: a real
    # batch has 19 arrays and objects). The JSON bound on arrays and objects is looser than
    # MessagePack's because of that: 100,000 empty arrays cost ~7 MB, and the event model refuses them.
    limits = (_MAX_JSON_CONTAINERS, _MAX_VALUES)
    if _within(_count(body, 0, len(body), limits), limits):
        return
    containers = commas = 0
    pos = 0
    while pos < len(body) and _within((containers, commas), limits):
        left = (limits[0] - containers, limits[1] - commas)
        # The regex looks at most one count step ahead: a scan of the whole body for a quote holds
        # the GIL (~35 ms for 30 MiB), and the event loop would wait that long.
        strings = _STRINGS_AHEAD.match(body, pos, min(len(body), pos + _COUNT_STEP))
        if strings is not None:  # up to 4096 strings and what lies between them, the strings taken out
            more, end = _count(_JSON_STRING.sub(b"", body[pos:strings.end()]), 0, None, limits), strings.end()
        elif (quote := body.find(b'"', pos)) == -1:  # no string ahead
            more, end = _count(body, pos, len(body), left), len(body)
        elif quote > pos:  # structure up to the next string
            more, end = _count(body, pos, quote, left), quote
        else:  # one string longer than the step: skipped whole
            string = _JSON_STRING.match(body, pos)
            if string is None:
                break  # unterminated: json.loads refuses it
            more, end = (0, 0), string.end()
        containers, commas = containers + more[0], commas + more[1]
        pos = end
    if containers > _MAX_JSON_CONTAINERS:
        raise InvalidBatch(f"body holds more than {_MAX_JSON_CONTAINERS} arrays and objects; a batch is an object "
                           f"with an events object holding one array per column, whose values are text, "
                           f"integers or null", field="events")
    if commas > _MAX_VALUES:
        raise InvalidBatch(f"body holds more than {_MAX_VALUES} values; a batch holds at most "
                           f"{MAX_EVENTS_PER_BATCH} events", field="events")


def _within(counts: tuple[int, int], limits: tuple[int, int]) -> bool:
    return counts[0] <= limits[0] and counts[1] <= limits[1]


def _count(body: bytes, start: int, stop: int | None, limits: tuple[int, int]) -> tuple[int, int]:
    """(``[`` + ``{``, ``,``) in body[start:stop], a slice at a time, stopping once over ``limits``:
    the GIL is free between slices, so the event loop answers while a worker thread counts."""
    stop = len(body) if stop is None else stop
    containers = commas = 0
    for at in range(start, stop, _COUNT_STEP):
        upto = min(stop, at + _COUNT_STEP)
        containers += body.count(b"[", at, upto) + body.count(b"{", at, upto)
        commas += body.count(b",", at, upto)
        if not _within((containers, commas), limits):
            break
    return containers, commas


def _no_repeated_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a decoder keeps the last silently; two readers could see two batches
        seen: set[Any] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise InvalidBatch(f"field {printable_name(repeated)!r} appears twice in one object",
                           field=printable_name(repeated))
    return obj


def encode_checked(batch: Batch, *, compress: bool = False) -> bytes:
    """A decoded and checked batch as one Arrow IPC stream (``ARROW_STREAM``), for ``decode_checked``.

    Uncompressed it is about 1.7 times the MessagePack size and costs next to
    nothing to write and read. ``compress`` (LZ4, ~0.6 times the MessagePack
    size, ~0.3 us per event on each side) is for a batch that would not fit in
    a message otherwise; the reader needs no flag, the stream says it.
    """
    import pyarrow as pa

    meta = {b"v": str(WIRE_VERSION).encode(), b"batch_id": batch.batch_id.encode(),
            b"device_id": batch.device_id.encode(), b"content_hash": batch.content_hash.encode()}
    table = batch.events.replace_schema_metadata(meta)
    options = pa.ipc.IpcWriteOptions(compression="lz4" if compress else None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_checked(body: bytes) -> Batch:
    """Read ``encode_checked``'s stream back, checking it as ``decode_batch`` checks a body.

    Every event value is checked again (a message on the stream need not come
    from a collector). The content hash is taken from the message, not
    recomputed (``content_hash`` of the table would give it, unless a collector
    from before that hash sent it): whoever can publish to the stream can name
    any device anyway.
    """
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(body).read_all()
        table.validate(full=True)  # offsets and UTF-8 before any kernel touches them
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UnreadableBatch(f"message is not a valid Arrow IPC stream: {exc}", field="body") from exc
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (table.schema.metadata or {}).items()}
    if meta.get("v") != str(WIRE_VERSION):
        raise InvalidBatch(f"unsupported wire version {meta.get('v')!r} in the Arrow metadata; this writer "
                           f"reads v={WIRE_VERSION}", field="v")
    for name in ("batch_id", "device_id"):
        if not _ID.fullmatch(meta.get(name, "")):
            raise InvalidBatch(f"{name} must be 8-128 characters of A-Z a-z 0-9 _ . : -, got {meta.get(name)!r}",
                               field=name)
    if not _SHA256_HEX.fullmatch(meta.get("content_hash", "")):
        raise InvalidBatch(f"content_hash must be 64 lowercase hex digits, got {meta.get('content_hash')!r}",
                           field="content_hash")
    table = table.replace_schema_metadata(None)
    if not table.schema.equals(_event_schema()):
        raise InvalidBatch(f"events: the Arrow schema is not the event schema: {table.schema}", field="events")
    if not 1 <= table.num_rows <= MAX_EVENTS_PER_BATCH:
        raise InvalidBatch(f"events: {table.num_rows} events; a batch holds 1 to {MAX_EVENTS_PER_BATCH}",
                           field="events")
    try:
        _check_values(table)
    except InvalidEvents as exc:
        field = f"events.{exc.field}" if exc.field else "events"
        raise InvalidBatch(f"events: {exc}", field=field, row=exc.row) from exc
    return Batch(meta["batch_id"], meta["device_id"], table, meta["content_hash"])


_JSON_TYPES = {"string": "string", "int64": "integer", "int32": "integer"}


def batch_json_schema() -> dict[str, Any]:
    """JSON Schema of a batch, derived from the event model (docs/schemas/batch.schema.json is this, saved)."""
    from .events import _FIELDS, EventKind  # the one definition; the schema is derived, never written by hand

    columns: dict[str, Any] = {}
    for name, typ, nullable in _FIELDS:
        item: dict[str, Any] = {"type": _JSON_TYPES[str(typ)]}
        if name == "kind":
            item["enum"] = [k.value for k in EventKind]
        if nullable:
            item = {"anyOf": [item, {"type": "null"}]}
        columns[name] = {"type": "array", "items": item}
    required = [name for name, _, nullable in _FIELDS if not nullable]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "deskcorder event batch",
        "type": "object",
        "required": ["v", "batch_id", "device_id", "events"],
        "additionalProperties": False,
        "properties": {
            "v": {"const": WIRE_VERSION},
            "batch_id": {"type": "string", "pattern": _ID.pattern},
            "device_id": {"type": "string", "pattern": _ID.pattern},
            "events": {"type": "object", "required": required, "additionalProperties": False,
                       "properties": columns},
        },
    }
