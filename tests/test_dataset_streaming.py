"""A build streamed through groups of whole sessions writes the whole-table build's bytes, and says how far it is."""

from __future__ import annotations

import importlib.util
import io
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from rich.console import Console

from deskcorder.dataset import BuildOptions, build_from_store
from deskcorder.dataset._stream import BuildProgress, session_groups
from deskcorder.store import EventStore
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import TEST_ACTOR, enrol

ROOT = Path(__file__).parent.parent
_spec = importlib.util.spec_from_file_location("dataset_build_bench", ROOT / "benchmarks" / "dataset_build.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

PEOPLE = 6  # more than RELEASE_MIN_PEOPLE, so the release anonymises against a population and keeps days


def fill(store: EventStore, people: int = PEOPLE, seed: int = 3) -> int:
    """``people`` people, 1-2 devices each, 1-3 sessions per device of the benchmark's desk work (sizes
    differ), each session stored in two batches; returns the number of events stored."""
    total = 0
    for p in range(people):
        devices = [f"device-{p}-{d}" for d in range(1 + p % 2)]
        enrol(store, f"person{p}", *devices)
        for d, device in enumerate(devices):
            for s in range(1 + (p + d) % 3):
                n = 600 + 250 * ((p * 7 + d * 3 + s) % 5)
                t = bench.synthesise(n, 1, seed=seed * 100 + p * 10 + d * 3 + s)
                ids = pa.array([uuid.UUID(int=(seed << 64) + p * 100 + d * 10 + s).hex] * t.num_rows)
                t = t.set_column(t.schema.get_field_index("session_id"), "session_id", ids)
                half = t.num_rows // 2
                for piece in (t.slice(0, half), t.slice(half)):
                    batch = encode_batch(uuid.uuid4().hex, device, piece.to_pydict(), MSGPACK)
                    store.write_batch(decode_batch(batch, MSGPACK))
                total += t.num_rows
    return total


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EventStore:
    data_dir = tmp_path_factory.mktemp("streaming") / "data"
    with EventStore(data_dir) as s:
        fill(s)
    return EventStore(data_dir)


def _bytes(out: Path) -> dict[str, bytes]:
    # The card names the folder it was written to; every other byte must agree.
    return {str(p.relative_to(out)): p.read_bytes().replace(str(out.resolve()).encode(), b"<out>")
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("options", [BuildOptions(linkable=True), BuildOptions(mode="internal")],
                         ids=["release", "internal"])
def test_streamed_builds_write_the_whole_table_bytes(store: EventStore, tmp_path: Path,
                                                     options: BuildOptions) -> None:
    # linkable / internal: the store's pseudonym key, so two builds can agree byte for byte at all.
    def build(name: str, group_events: int | None) -> dict[str, bytes]:
        build_from_store(store, tmp_path / name, actor=TEST_ACTOR, purpose="test", options=options,
                         group_events=group_events, console=Console(file=io.StringIO()))
        return _bytes(tmp_path / name)

    whole = build("whole", None)
    sizes = [(s.session_id, s.n_events) for s in store.sessions()]
    assert len(sizes) >= 12 and len({s.device_id for s in store.sessions()}) >= 9
    small = 2_000  # about two sessions a group
    assert len(session_groups(sizes, small)) >= 8
    assert build("one-group", 10**9) == whole
    assert build("many-groups", small) == whole
    assert build("one-session-each", 1) == whole
    assert set(whole) >= {"README.md", "stats.json", "data/keystrokes/train-00000.parquet"}


def test_session_groups_are_whole_sessions_in_order_and_a_big_session_stands_alone() -> None:
    sizes = [("c", 5), ("a", 3), ("b", 3), ("e", 50), ("d", 1)]
    assert session_groups(sizes, 6) == [["a", "b"], ["c", "d"], ["e"]]
    assert session_groups(sizes, 10**6) == [["a", "b", "c", "d", "e"]]


def test_a_build_off_a_terminal_prints_its_count_rate_and_time_left(store: EventStore, tmp_path: Path) -> None:
    text = io.StringIO()
    stats = build_from_store(store, tmp_path / "out", actor=TEST_ACTOR, purpose="test", group_events=2_000,
                             console=Console(file=text, force_terminal=False, width=200))
    lines = text.getvalue().splitlines()
    done = [line for line in lines if f"{stats.events:,} of {stats.events:,} events (100 %)" in line]
    assert done and "events/s" in done[0] and "about 0 s left" in done[0], lines
    assert any("writing" in line for line in lines), lines


def test_progress_lines_come_every_period_with_an_estimate() -> None:
    now = [0.0]
    text = io.StringIO()
    report = BuildProgress(1_000, console=Console(file=text, width=200), every_s=10, clock=lambda: now[0])
    for _ in range(4):
        now[0] += 5
        report.advance(100)
    lines = text.getvalue().splitlines()
    assert len(lines) == 2, lines  # at 10 s and 20 s, not at 5 s or 15 s
    assert lines[-1] == ("dataset build: 400 of 1,000 events (40 %), 20 events/s, 20 s spent, about 30 s left")


def test_a_streamed_dask_build_writes_the_whole_table_bytes(store: EventStore, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    options = BuildOptions(linkable=True)
    whole = tmp_path / "whole"
    build_from_store(store, whole, actor=TEST_ACTOR, purpose="test", options=options, group_events=None,
                     console=Console(file=io.StringIO()))
    dask = tmp_path / "dask"
    build_from_store(store, dask, actor=TEST_ACTOR, purpose="test", options=options, group_events=2_000,
                     engine="dask", workers=2, console=Console(file=io.StringIO()))
    assert _bytes(dask) == _bytes(whole)
