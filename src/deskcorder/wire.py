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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any, Mapping

import msgpack
import pyarrow as pa

from .events import InvalidEvents, columns_to_table

__all__ = ["Batch", "InvalidBatch", "UnreadableBatch", "MSGPACK", "JSON", "WIRE_VERSION", "batch_json_schema", "decode_batch", "encode_batch"]

WIRE_VERSION = 1
MSGPACK = "application/msgpack"
JSON = "application/json"
_ID = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")


class InvalidBatch(ValueError):
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
            obj = msgpack.unpackb(body, raw=False, strict_map_key=True)
        elif media == JSON:
            obj = json.loads(body)
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
    if obj.get("v") != WIRE_VERSION:
        raise InvalidBatch(f"unsupported wire version {obj.get('v')!r}; this collector speaks "
                           f"v={WIRE_VERSION}", field="v")
    unknown = sorted(set(obj) - {"v", "batch_id", "device_id", "events"})
    if unknown:
        raise InvalidBatch(f"unknown top-level field {unknown[0]!r}", field=unknown[0])
    for name in ("batch_id", "device_id"):
        value = obj.get(name)
        if not isinstance(value, str) or not _ID.match(value):
            raise InvalidBatch(f"{name} must be 8-128 characters of A-Z a-z 0-9 _ . : -, "
                               f"got {value!r}", field=name)
    events = obj.get("events")
    try:
        table = columns_to_table(events)
    except InvalidEvents as exc:
        field = f"events.{exc.field}" if exc.field else "events"
        raise InvalidBatch(f"events: {exc}", field=field, row=exc.row) from exc
    # Re-packing normalises JSON and MessagePack bodies to the same bytes, so a
    # batch retried in the other encoding is still recognised as the same batch.
    content_hash = hashlib.sha256(msgpack.packb(events, use_bin_type=True)).hexdigest()
    return Batch(obj["batch_id"], obj["device_id"], table, content_hash)


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
