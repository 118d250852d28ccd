"""Losses reported upstream: every event the agent loses leaves a GAP event where it went missing.

The GAP event (``reason``: one of LOSS_REASONS, ``lost``: how many) is numbered
like any event, travels in the batch, and the collector adds its count to the
device's loss counters, which ``deskcorder device list``, ``GET /v1/devices``
and the admin console show. A dataset ends the episode at a gap.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import LOSS_REASONS, RawEvent, RecordingStatus, Spool
from deskcorder.capture._gate import Gate
from deskcorder.capture._queue import EventQueue
from deskcorder.capture._writer import Writer
from deskcorder.dataset import read_table
from deskcorder.events import EventKind, InvalidEvents, columns_to_table, events_to_columns
from deskcorder.policy import parse_policy
from deskcorder.store import EventStore
from deskcorder.wire import JSON, decode_batch, encode_batch

from .capture_rig import ALLOW_ALL, Desk, terminal, wait_for
from .capture_rig import xs  # noqa: F401  (a fixture: Xvfb + openbox, $DISPLAY set for pynput)
from .helpers import ALLOW_ALL_POLICY, TEST_ACTOR, admin_headers, start_collector
from .test_portal_auth import log_in

KEY = RawEvent(EventKind.KEY_DOWN, key="a", char="a")
FOCUS = RawEvent(EventKind.FOCUS, app_class="XTerm", app_process="xterm", window_title="notes")


def recording_queue(max_events: int) -> EventQueue:
    """A queue whose gate records (consent given, every application allowed) behind one FOCUS event."""
    queue = EventQueue(Gate(), max_events=max_events)
    policy = parse_policy(ALLOW_ALL_POLICY)
    status = RecordingStatus(True, None, "allowed", policy, policy.version)
    queue.apply(lambda t_mono, t_wall, out: queue.gate.set_status(status, t_mono, t_wall, out))
    assert queue.submit(FOCUS) and queue.gate.recording
    return queue


def kinds(items: list[Any]) -> list[tuple[str, str | None, int | None]]:
    return [(e.kind.value, e.reason, e.lost) for _, _, e in items]


# -- the agent ---------------------------------------------------------------------------------

def test_an_overflowing_queue_leaves_one_gap_where_input_went_missing_counting_every_lost_event() -> None:
    queue = recording_queue(max_events=4)
    kept = [queue.submit(KEY) for _ in range(3 + 25)]
    assert kept == [True] * 3 + [False] * 25
    assert queue.lost["queue_full"] == 25
    items = queue.drain()
    assert kinds(items) == [("focus", None, None), *[("key_down", None, None)] * 3, ("gap", "queue_full", 25)]
    t_mono = [t for t, _, _ in items]
    assert t_mono == sorted(t_mono)  # stamped when the first event was lost: after all it follows

    # After the writer drained, the next overflow is another gap, at its own place.
    assert [queue.submit(KEY) for _ in range(6)] == [True] * 4 + [False] * 2
    assert kinds(queue.drain())[-1] == ("gap", "queue_full", 2)
    assert queue.lost == {"queue_full": 27, "spool_unavailable": 0, "callback_error": 0}


def test_a_failed_listener_callback_is_a_gap_too() -> None:
    queue = recording_queue(max_events=100)
    queue.record_lost("callback_error")
    queue.submit(KEY)
    queue.record_lost("callback_error", 2)  # same drain: the same gap counts it
    assert kinds(queue.drain())[1:] == [("gap", "callback_error", 3), ("key_down", None, None)]


def test_a_loss_while_not_recording_is_counted_but_leaves_no_trace_in_the_stream() -> None:
    queue = EventQueue(Gate(), max_events=4)  # no consent yet: nothing is recorded
    queue.record_lost("callback_error")
    assert queue.lost["callback_error"] == 1 and queue.drain() == []
    with pytest.raises(ValueError, match="unknown loss reason 'cosmic_ray'.*queue_full"):
        queue.record_lost("cosmic_ray")


class FullDisk(Spool):
    """A spool on a disk that is full until ``freed`` (what makes the writer keep events in memory)."""

    full = True

    def append(self, session_id: str, first_seq: int, columns: Any) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        super().append(session_id, first_seq, columns)


def test_events_dropped_for_an_unwritable_spool_are_followed_by_a_gap_that_takes_the_next_seq(tmp_path: Path) -> None:
    queue = recording_queue(max_events=1000)
    spool = FullDisk(tmp_path / "spool.db")
    writer = Writer(queue, spool, "0123456789abcdef0123456789abcdef", flush_interval_s=0.02)
    writer.MAX_UNSPOOLED = 5  # memory "runs out" after five events
    writer.start()
    try:
        for _ in range(5):
            queue.submit(KEY)
        deadline = time.monotonic() + 5
        while queue.lost["spool_unavailable"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        spool.full = False
        queue.submit(KEY)
    finally:
        writer.stop()
    events = spool.read_events().to_pylist()
    spool.close()
    assert queue.lost["spool_unavailable"] == 6  # the FOCUS and five keys
    assert [(e["seq"], e["kind"], e["reason"], e["lost"]) for e in events] == [
        (6, "gap", "spool_unavailable", 6), (7, "key_down", None, None)]


# -- the event model and the wire ------------------------------------------------------------------

def columns(**overrides: list[Any]) -> dict[str, list[Any]]:
    base: dict[str, list[Any]] = {"session_id": ["s1", "s1"], "seq": [0, 1], "t_mono_ns": [1, 2],
                                  "t_wall_ns": [10, 20], "kind": ["key_down", "gap"], "key": ["a", None],
                                  "reason": [None, "queue_full"], "lost": [None, 12]}
    return {**base, **overrides}


def test_a_gap_event_is_an_event_of_the_one_model() -> None:
    table = columns_to_table(columns())
    assert table.column("lost").to_pylist() == [None, 12]
    assert set(LOSS_REASONS) == {"queue_full", "spool_unavailable", "callback_error"}


@pytest.mark.parametrize("overrides, field, row", [
    ({"reason": [None, "the cat sat on the keyboard"]}, "reason", 1),
    ({"reason": [None, None]}, "reason", 1),
    ({"lost": [None, None]}, "lost", 1),
    ({"lost": [None, 0]}, "lost", 1),
    ({"lost": [3, 12]}, "lost", 0),  # a key press carries no count
])
def test_a_gap_names_a_loss_reason_and_a_count_of_at_least_one(overrides: dict[str, list[Any]], field: str,
                                                                row: int) -> None:
    with pytest.raises(InvalidEvents) as refused:
        columns_to_table(columns(**overrides))
    assert (refused.value.field, refused.value.row) == (field, row)


def test_a_batch_from_an_agent_that_knows_no_gaps_is_still_accepted() -> None:
    old = {name: values for name, values in columns(kind=["key_down", "key_up"], key=["a", "a"],
                                                    reason=[None, None]).items() if name != "lost"}
    batch = decode_batch(encode_batch("batch-0001", "device-01", old, JSON), JSON)
    assert batch.events.column("lost").null_count == 2


def test_a_dataset_ends_the_episode_at_a_gap_and_no_action_spans_it(tmp_path: Path) -> None:
    from deskcorder.dataset import BuildOptions, build_dataset

    from .test_dataset_rules import Recording

    r = Recording()
    r.focus("Editor")
    before = r.type("ab")
    r.add("key_down", key="ctrl_l")  # its key_up is among the lost events
    gap = r.add("gap", reason="queue_full", lost=40)
    after = r.type("cd")  # typing again, not ctrl+c: what was held is forgotten at a gap
    out = tmp_path / "ds"
    build_dataset(columns_to_table(events_to_columns(r.events)), out, BuildOptions(mode="internal"))
    actions, episodes = read_table(out, "actions").to_pylist(), read_table(out, "episodes").to_pylist()
    assert [(a["kind"], a["text"], a["event_seqs"]) for a in actions] == [("type", "ab", before),
                                                                          ("type", "cd", after)]
    assert [(e["start_reason"], e["event_seq_last"]) for e in episodes] == [("session_start", gap),
                                                                            ("gap", after[-1] + 1)]


# -- on a real desk, up to the collector and the dataset -------------------------------------------

BURST = 400  # keys typed at once: 800 events, against a queue of 16 drained once a second
AFTER = "done"  # typed once the writer caught up
ADMIN, ADMIN_PASSWORD = "losses-admin", "a long admin password for the losses test"


@pytest.mark.x11
def test_a_queue_overflow_on_a_real_desk_is_counted_by_the_collector_and_marked_in_the_stored_events(
        xs: XSession, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with start_collector(data_dir) as url:
        desk = Desk(data_dir, url)
        desk.set_policy(ALLOW_ALL)
        desk.add_employee("overflow")
        desk.consent("overflow", "give")
        with EventStore(data_dir) as store:
            store.portal.set_password(ADMIN, ADMIN_PASSWORD, role="admin", actor=TEST_ACTOR)
        xs.activate(terminal(xs, "OverflowTerm", "overflow"))
        with desk.agent(tmp_path / "agent", "overflow", queue_max_events=16, flush_interval_s=1.0) as agent:
            wait_for(lambda: agent.stats()["recording"], "the agent recording")
            xs.xdotool("type", "--delay", "1", "x" * BURST)
            time.sleep(1.5)  # the writer drains the queue: what follows is recorded again
            xs.xdotool("type", "--delay", "20", AFTER)
            time.sleep(0.5)
        lost = agent.stats()["lost"]
        device_id = agent.device_id
        assert lost["queue_full"] > 0 and lost["spool_unavailable"] == lost["callback_error"] == 0

        # In the stored events: gaps where the keys went missing, numbered like every event.
        events = desk.stored(device_id)
        assert [e["seq"] for e in events] == list(range(len(events)))
        gaps = [e for e in events if e["kind"] == "gap"]
        assert gaps and {g["reason"] for g in gaps} == {"queue_full"}
        assert sum(g["lost"] for g in gaps) == lost["queue_full"]
        keys = sum(e["kind"] in ("key_down", "key_up") for e in events)
        typed = 2 * (BURST + len(AFTER))
        assert typed <= keys + lost["queue_full"] <= typed + 2  # (+ a FOCUS lost in the burst, at most)
        assert "".join(e["char"] for e in events if e["kind"] == "key_down")[-len(AFTER):] == AFTER
        print(f"\n{typed} key events typed: {keys} recorded, {lost['queue_full']} lost in {len(gaps)} gaps")

        # At the collector: per device, in the admin API, `deskcorder device list` and the admin console.
        rows = httpx.get(f"{url}/v1/devices", headers=admin_headers(data_dir), timeout=10).json()
        (row,) = [r for r in rows if r["device_id"] == device_id]
        assert row["lost"] == lost
        listing = subprocess.run([sys.executable, "-m", "deskcorder", "device", "list", "--data-dir", str(data_dir)],
                                 capture_output=True, text=True, check=True).stdout
        (line,) = [line for line in listing.splitlines() if line.startswith(device_id)]
        assert f"{lost['queue_full']} (queue_full={lost['queue_full']})" in line
        assert listing.splitlines()[0].split()[-2:] == ["lost", "last_seen"]
        console = log_in(url, ADMIN, ADMIN_PASSWORD).get("/admin").text
        assert f'<td class="lost">{lost["queue_full"]} (queue_full {lost["queue_full"]})</td>' in console

    # The dataset ends an episode at each gap: no action spans missing input.
    out = tmp_path / "dataset"
    subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir", str(data_dir),
                    "--out", str(out)], check=True, capture_output=True)
    reasons = [e["start_reason"] for e in read_table(out, "episodes").to_pylist()]
    assert reasons[0] == "session_start" and "gap" in reasons
