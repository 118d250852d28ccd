"""The event model and wire format: one definition, validated at the boundary, with a schema file that matches."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import deskcorder
from deskcorder.events import (EVENT_SCHEMA, Event, EventKind, InvalidEvents, columns_to_table,
                               events_to_columns, table_to_events)
from deskcorder.wire import JSON, MSGPACK, InvalidBatch, batch_json_schema, decode_batch, encode_batch

SCHEMA_FILE = Path(__file__).parent.parent / "docs" / "schemas" / "batch.schema.json"


def sample_events() -> list[Event]:
    return [
        Event("s1", 0, 10, 1_700_000_000_000_000_000, EventKind.FOCUS, app_class="XTerm",
              app_process="xterm", window_title="bash"),
        Event("s1", 1, 20, 1_700_000_000_000_000_010, EventKind.KEY_DOWN, key="a", char="a", vk=97),
        Event("s1", 2, 30, 1_700_000_000_000_000_020, EventKind.KEY_UP, key="a", char="a", vk=97),
        Event("s1", 3, 40, 1_700_000_000_000_000_030, EventKind.MOVE, x=5, y=6),
        Event("s1", 4, 50, 1_700_000_000_000_000_040, EventKind.BUTTON_DOWN, button="left", x=5, y=6),
        Event("s1", 5, 60, 1_700_000_000_000_000_050, EventKind.SCROLL, x=5, y=6, dx=0, dy=-1),
        Event("s1", 6, 70, 1_700_000_000_000_000_060, EventKind.PAUSE, reason="hotkey"),
    ]


def test_events_round_trip_through_columns_and_arrow() -> None:
    events = sample_events()
    table = columns_to_table(events_to_columns(events))
    assert table.schema == EVENT_SCHEMA
    assert table_to_events(table) == events


@pytest.mark.parametrize("content_type", [MSGPACK, JSON])
def test_batch_round_trips_in_both_encodings(content_type: str) -> None:
    body = encode_batch("batch-0001", "device-01", events_to_columns(sample_events()), content_type)
    batch = decode_batch(body, content_type)
    assert (batch.batch_id, batch.device_id, batch.events.num_rows) == ("batch-0001", "device-01", 7)


def test_same_events_have_the_same_content_hash_in_either_encoding() -> None:
    cols = events_to_columns(sample_events())
    a = decode_batch(encode_batch("batch-0001", "device-01", cols, MSGPACK), MSGPACK)
    b = decode_batch(encode_batch("batch-0001", "device-01", cols, JSON), JSON)
    cols["x"][3] = 7
    c = decode_batch(encode_batch("batch-0001", "device-01", cols, JSON), JSON)
    assert a.content_hash == b.content_hash != c.content_hash


@pytest.mark.parametrize("mutate, field, row, words", [
    (lambda c: c.pop("seq"), "seq", None, "missing"),
    (lambda c: c["kind"].__setitem__(2, "teleport"), "kind", 2, "unknown kind 'teleport'"),
    (lambda c: c["key"].__setitem__(1, None), "key", 1, "required for key_down"),
    (lambda c: c["x"].__setitem__(3, "five"), "x", 3, "expected int32"),
    (lambda c: c["seq"].__setitem__(4, -1), "seq", 4, ">= 0"),
    (lambda c: c["seq"].__setitem__(4, 3), "seq", 3, "appears twice"),
    (lambda c: c["window_title"].__setitem__(0, "t" * 2000), "window_title", 0, "longer than 1024"),
    (lambda c: c.__setitem__("mood", [None] * 7), "mood", None, "unknown column"),
    (lambda c: c["y"].pop(), "y", None, "has 6 values"),
])
def test_invalid_events_name_the_field_and_row(mutate, field, row, words) -> None:
    cols = events_to_columns(sample_events())
    mutate(cols)
    with pytest.raises(InvalidEvents) as info:
        columns_to_table(cols)
    assert (info.value.field, info.value.row) == (field, row)
    assert words in str(info.value)


@pytest.mark.parametrize("body, content_type, field", [
    (b"\xc1", MSGPACK, "body"),
    (b"{not json", JSON, "body"),
    (b"{}", "text/plain", "Content-Type"),
    (b"[1, 2]", JSON, "body"),
    (json.dumps({"v": 2}).encode(), JSON, "v"),
    (json.dumps({"v": 1, "batch_id": "short", "device_id": "device-01", "events": {}}).encode(), JSON, "batch_id"),
    (json.dumps({"v": 1, "batch_id": "batch-0001", "device_id": "device-01", "events": {}, "x": 1}).encode(),
     JSON, "x"),
    (json.dumps({"v": 1, "batch_id": "batch-0001", "device_id": "device-01", "events": []}).encode(),
     JSON, "events"),
])
def test_malformed_bodies_are_refused_with_the_part_named(body: bytes, content_type: str, field: str) -> None:
    with pytest.raises(InvalidBatch) as info:
        decode_batch(body, content_type)
    assert info.value.field == field


def test_saved_schema_file_matches_the_model_and_accepts_real_batches() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema == batch_json_schema(), "regenerate docs/schemas/batch.schema.json from deskcorder.wire"
    body = json.loads(encode_batch("batch-0001", "device-01", events_to_columns(sample_events()), JSON))
    jsonschema.validate(body, schema)
    body["events"]["kind"][0] = "teleport"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema)


def test_public_api_is_small_and_deliberate() -> None:
    assert sorted(deskcorder.__all__) == ["DeskcorderError", "EVENT_SCHEMA", "Event", "EventKind", "InvalidEvents",
                                          "__version__"]
