"""Generated batches and enrolments, valid and broken, never get a 5xx and a refused body stores nothing.

hypothesis builds batches from a valid one by breaking parts of it (wrong types, lone surrogates, NULs,
huge and negative integers, missing and extra fields, columns of other lengths) and posts them in both
encodings to one real collector; enrolment bodies are generated the same way. Bounded for CI.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskcorder.wire import Batch, InvalidBatch, decode_batch

from .helpers import auth_headers, enrol_in, start_collector
from .ingest_rig import DEVICE, JSON, MSGPACK, NO_RATE_LIMIT, batch, encode, exchange, good_columns, stored

# Every code point, lone surrogates (category Cs, left out by default) and NUL included.
_TEXT = st.one_of(st.sampled_from(["\ud800", "a\x00", "\udfffx"]),
                  st.text(alphabet=st.characters(exclude_categories=()), max_size=12))
_VALUE = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                   st.floats(allow_nan=False, allow_infinity=False), _TEXT, st.binary(max_size=4),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_COLUMNS = list(good_columns())


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    cols: dict[Any, Any] = good_columns(draw(st.sampled_from(["sess-fuzz-a", "sess-fuzz-b"])))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["value", "drop", "extra", "length", "column"]))
        name = draw(st.sampled_from(_COLUMNS + ["x", "y", "window_title", "vk"]))
        if action == "value":
            column = cols.get(name)
            cols[name] = column = list(column) if isinstance(column, list) and len(column) == 3 else [None] * 3
            column[draw(st.integers(0, 2))] = draw(_VALUE)
        elif action == "drop":
            cols.pop(name, None)
        elif action == "extra":
            cols[draw(_TEXT)] = [draw(_VALUE)] * 3
        elif action == "length":
            cols[name] = [draw(_VALUE)] * draw(st.integers(0, 5))
        else:
            cols[name] = draw(_VALUE)
    obj: dict[Any, Any] = batch("batch-" + draw(st.text("abcdef0123", min_size=8, max_size=10)), cols)
    if draw(st.booleans()):
        obj[draw(st.sampled_from(["v", "batch_id", "device_id", "events", "extra"]))] = draw(_VALUE)
    return obj


def _encodable(obj: Any, content_type: str) -> bytes | None:
    try:
        return encode(obj, content_type)
    except (TypeError, ValueError, OverflowError):  # e.g. MessagePack cannot carry a lone surrogate or 2**70
        return None


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, socket.socket]]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    enrol_in(data_dir, "alice", DEVICE)
    with start_collector(data_dir, *NO_RATE_LIMIT) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            yield url, data_dir, sock


_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@_FUZZ
@given(obj=batches(), content_type=st.sampled_from([JSON, MSGPACK]))
def test_generated_batches_never_get_a_5xx_and_refused_ones_store_nothing(
        collector: tuple[str, Path, socket.socket], obj: dict[str, Any], content_type: str) -> None:
    url, data_dir, sock = collector
    body = _encodable(obj, content_type)
    if body is None:
        return
    before = stored(data_dir)
    status, _, answer = exchange(sock, "POST", "/v1/batches", body,
                                 {"Content-Type": content_type, **auth_headers(url, DEVICE)})
    assert status < 500, answer
    if status != 200:
        assert set(json.loads(answer)) == {"error", "field", "row"}
        assert stored(data_dir) == before


_ENROL_VALUE = st.one_of(_TEXT, st.text("dcet_abcdef-_", max_size=20), _VALUE)


@_FUZZ
@given(fields=st.dictionaries(st.sampled_from(["token", "device_id", "hostname", "other"]), _ENROL_VALUE,
                              max_size=4))
def test_generated_enrolments_never_get_a_5xx_and_store_nothing(
        collector: tuple[str, Path, socket.socket], fields: dict[str, Any]) -> None:
    url, data_dir, sock = collector
    body = _encodable(fields, JSON)
    if body is None:
        return
    before = stored(data_dir)
    status, _, answer = exchange(sock, "POST", "/v1/devices/enrol", body, {"Content-Type": JSON})
    assert 400 <= status < 500, answer  # no generated token is real
    assert stored(data_dir) == before


@settings(max_examples=200, deadline=None)
@given(obj=batches(), content_type=st.sampled_from([JSON, MSGPACK]))
def test_decode_batch_returns_a_batch_or_raises_invalid_batch_only(obj: dict[str, Any], content_type: str) -> None:
    body = _encodable(obj, content_type)
    if body is None:
        return
    try:
        assert isinstance(decode_batch(body, content_type), Batch)
    except InvalidBatch as exc:
        assert exc.field  # every refusal names its part
