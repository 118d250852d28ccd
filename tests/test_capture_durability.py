"""The agent never loses acknowledged input and stores nothing twice: kill -9, a collector that goes away.

Everything here is real and in its own process: Xvfb + openbox, xdotool
typing into an xterm, `deskcorder serve` and `deskcorder agent`. What was
stored is read back from the collector's data directory afterwards, and the
agent's spool is reopened from disk.

The bound under test (see capture/_agent.py): a ``kill -9`` loses only what the
agent still held in memory, i.e. input captured since its last spool commit,
at most ``--flush-interval`` plus one commit. Everything spooled before the
kill is uploaded by the next agent started with the same state directory.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import Spool
from deskcorder.store import EventStore

from .helpers import READ, _stop, admin_headers, enrol_in, install_credential, spawn_collector

pytestmark = pytest.mark.x11

FLUSH_S = 0.2  # the agent's --flush-interval in these tests
UPLOAD_S = 0.5  # and its --upload-interval: several batches in a few seconds of input
# What a loaded 2-core test machine may add to the flush interval before an event is committed:
# X -> RECORD client delivery, the writer thread being scheduled, the fsync of the commit.
SCHEDULING_SLACK_S = 0.25
HANDLE = "durable"


# -- processes -------------------------------------------------------------------------------

class AgentProcess:
    """`deskcorder agent` with its output in a file, so it can be killed at any moment and still be read."""

    def __init__(self, url: str, state_dir: Path, env: dict[str, str], log: Path):
        self.log = log
        self._out = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deskcorder", "agent", "--server", url, "--state-dir", str(state_dir),
             "--flush-interval", str(FLUSH_S), "--upload-interval", str(UPLOAD_S)],
            stdout=self._out, stderr=subprocess.STDOUT, text=True, env={**env, "PYTHONUNBUFFERED": "1"})
        self.session_id = self._wait_for(re.compile(r"session ([0-9a-f]{32})"), 30).group(1)
        self.state_dir = state_dir

    def wait_recording(self, collector: "Collector") -> None:
        """Until the session's first event (its FOCUS) is spooled or stored: input from now on is recorded.

        The start line alone does not say so: an agent that asks the collector for consent
        first drops input until the answer arrives.
        """
        def recorded() -> bool:
            with contextlib.closing(sqlite3.connect(f"file:{self.state_dir / 'spool.db'}?mode=ro", uri=True,
                                                    timeout=10)) as db:
                if db.execute("SELECT 1 FROM chunks WHERE session_id = ?", (self.session_id,)).fetchone():
                    return True
            return self.session_id in collector.session_ids()

        wait_until(recorded, "the agent recorded nothing (not even the FOCUS of the active window)", 10)
        time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text()

    def _wait_for(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m := pattern.search(self.output()):
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.close()
        raise AssertionError(f"the agent did not print {pattern.pattern!r}; output:\n{self.output()}")

    def kill_9(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> dict[str, int]:
        """SIGTERM, wait for a clean exit, and return the counters of its stop line."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=15) == 0, self.output()
        line = next((line for line in self.output().splitlines() if "agent stopped" in line), None)
        assert line is not None, self.output()
        return {k: int(v) for k, v in re.findall(r"(captured|coalesced|spooled|uploaded|backlog|lost) (\d+)", line)}

    def close(self) -> None:
        _stop(self.proc)
        self._out.close()


class Collector:
    """`deskcorder serve` that can be SIGKILLed and started again on the same port and data directory."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.proc, self.url = spawn_collector(data_dir)
        self.port = int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        self.proc, url = spawn_collector(self.data_dir, self.port)
        assert url == self.url

    def session_ids(self) -> set[str]:
        return {s["session_id"] for s in httpx.get(f"{self.url}/v1/sessions", headers=admin_headers(self.data_dir),
                                                   timeout=5).json()}

    def stored_events(self) -> int:
        devices = httpx.get(f"{self.url}/v1/devices", headers=admin_headers(self.data_dir), timeout=5).json()
        return sum(d["n_events"] for d in devices)


@pytest.fixture(scope="module")
def xs() -> Iterator[XSession]:
    with XSession() as session:
        yield session


@contextlib.contextmanager
def recording_rig(xs: XSession, tmp_path: Path, name: str) -> Iterator[tuple[Collector, Path, list]]:
    """An xterm with the focus, an enrolled device id in a fresh state dir, a collector; cleans up all."""
    window = xs.open_window(["xterm", "-class", name, "-title", name, "-e", "sh", "-c", "stty -echo; cat >/dev/null"],
                            name)
    xs.activate(window)
    data_dir, state_dir = tmp_path / "data", tmp_path / "agent"
    device_id = f"device-{name.lower()}"
    enrol_in(data_dir, HANDLE, device_id)  # before the agent starts: its events are stored from the first one
    install_credential(state_dir, data_dir, device_id)  # as if the agent had enrolled with a token
    collector = Collector(data_dir)
    agents: list[AgentProcess] = []
    try:
        yield collector, state_dir, agents
    finally:
        for agent in agents:
            agent.close()
        _stop(collector.proc)


def stored(data_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """The store reopened from disk: events per session (sorted by seq) and the devices' event count."""
    with EventStore(data_dir) as store:
        rows = store.read_events(**READ).to_pylist()
        counted = sum(d.n_events for d in store.devices())
    sessions: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        sessions.setdefault(row["session_id"], []).append(row)
    return sessions, counted


def assert_exactly_once_in_order(events: list[dict[str, Any]]) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(len(seqs))), f"seq is not contiguous from 0 (duplicates or gaps): {seqs[:50]}..."
    t = [e["t_mono_ns"] for e in events]
    assert all(a <= b for a, b in zip(t, t[1:])), "t_mono_ns runs backwards: events were stored out of order"


def typed(events: list[dict[str, Any]]) -> str:
    return "".join(e["char"] or "?" for e in events if e["kind"] == "key_down")


def spool_backlog(state_dir: Path) -> int:
    """Events in the spool not yet acknowledged, read without disturbing the agent that writes it."""
    with contextlib.closing(sqlite3.connect(f"file:{state_dir / 'spool.db'}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute("SELECT coalesce(sum(n_events), 0) FROM chunks").fetchone()[0]


def wait_until(predicate: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(0.1)


class Typist(threading.Thread):
    """Presses the keys of a text one xdotool call at a time, noting when each call returned.

    A returned call means the X server has the key (xdotool flushes before it
    exits), so ``sent[i]`` is a time by which the agent could have seen key i.
    """

    def __init__(self, xs: XSession, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789"):
        super().__init__(daemon=True)
        self.xs, self.alphabet = xs, alphabet
        self.text: list[str] = []
        self.sent: list[int] = []  # time.monotonic_ns(), the agent's clock too
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            ch = self.alphabet[i % len(self.alphabet)]
            self.xs.xdotool("key", ch)
            self.text.append(ch)
            self.sent.append(time.monotonic_ns())
            i += 1

    def finish(self) -> None:
        self.halt.set()
        self.join(10)


# -- tests -----------------------------------------------------------------------------------

def test_kill_9_mid_typing_keeps_every_committed_event_and_uploads_the_backlog_once(
        xs: XSession, tmp_path: Path) -> None:
    with recording_rig(xs, tmp_path, "KillTerm") as (collector, state_dir, agents):
        first = AgentProcess(collector.url, state_dir, xs.env, tmp_path / "first.log")
        agents.append(first)
        first.wait_recording(collector)
        typist = Typist(xs)
        typist.start()
        # Phase 1, collector up: some of the session is acknowledged (stored) before anything goes wrong.
        wait_until(lambda: collector.stored_events() > 20, "no events were stored while the collector was up", 5)
        acknowledged = collector.stored_events()
        collector.kill()
        # Phase 2, collector down: typing goes on, so a backlog of committed but unsent chunks builds up.
        time.sleep(1.2)
        t_kill = time.monotonic_ns()
        first.kill_9()
        time.sleep(0.2)  # keys typed now reach no agent: they must not count as lost either way
        typist.finish()

        spool = Spool(state_dir / Spool.FILE_NAME)  # what the dead agent committed and nobody acknowledged
        try:
            backlog = spool.read_events().to_pylist()
        finally:
            spool.close()
        assert typed(backlog), "no keys were waiting in the spool at the kill; the test proves nothing about it"

        collector.restart()
        second = AgentProcess(collector.url, state_dir, xs.env, tmp_path / "second.log")
        agents.append(second)
        wait_until(lambda: spool_backlog(state_dir) == 0, "the restarted agent did not upload the backlog", 10)
        counters = second.stop()
        assert counters["backlog"] == 0 and counters["uploaded"] >= len(backlog), counters

    sessions, counted = stored(tmp_path / "data")
    assert counted == sum(len(events) for events in sessions.values()), "the store counts more events than it holds"
    killed = sessions[first.session_id]
    assert_exactly_once_in_order(killed)
    assert len(killed) >= acknowledged
    backlog_seqs = {e["seq"] for e in backlog if e["session_id"] == first.session_id}
    assert backlog_seqs <= {e["seq"] for e in killed}, "committed events were not uploaded after the restart"

    got = typed(killed)
    assert got == "".join(typist.text[:len(got)]), "the stored keys are not the typed keys, in order, once each"
    must_have = sum(1 for t in typist.sent if t <= t_kill - (FLUSH_S + SCHEDULING_SLACK_S) * 1e9)
    lost = [t for t in typist.sent[len(got):] if t <= t_kill]
    tail_ms = (t_kill - lost[0]) / 1e6 if lost else 0.0
    print(f"\nkill -9: {len(got)} keys stored ({len(backlog)} events from the spool backlog), "
          f"{len(lost)} keys lost, the oldest sent {tail_ms:.0f} ms before the kill "
          f"(bound {FLUSH_S * 1000:.0f} ms flush + {SCHEDULING_SLACK_S * 1000:.0f} ms slack)")
    assert len(got) >= must_have, (f"keys sent up to {(FLUSH_S + SCHEDULING_SLACK_S) * 1000:.0f} ms before the "
                                   f"kill are missing: stored {len(got)}, expected at least {must_have}")


def test_a_collector_down_for_a_while_loses_nothing(xs: XSession, tmp_path: Path) -> None:
    text = "while the collector is down every key waits in the spool 0123456789"
    with recording_rig(xs, tmp_path, "DownTerm") as (collector, state_dir, agents):
        agent = AgentProcess(collector.url, state_dir, xs.env, tmp_path / "agent.log")
        agents.append(agent)
        agent.wait_recording(collector)
        collector.kill()
        xs.xdotool("type", "--delay", "8", text)
        time.sleep(FLUSH_S * 2)
        assert spool_backlog(state_dir) >= 2 * len(text), "the typed keys are not waiting in the spool"
        collector.restart()
        wait_until(lambda: spool_backlog(state_dir) == 0, "the spool did not drain after the collector came back",
                   12)
        counters = agent.stop()

    assert counters["backlog"] == 0 and counters["lost"] == 0, counters
    assert counters["uploaded"] == counters["spooled"] == counters["captured"] - counters["coalesced"], counters
    sessions, counted = stored(tmp_path / "data")
    events = sessions[agent.session_id]
    assert counted == len(events) == counters["uploaded"]
    assert_exactly_once_in_order(events)
    assert typed(events) == text


def test_uploaded_batches_arrive_in_order_and_uploaded_equals_spooled(xs: XSession, tmp_path: Path) -> None:
    text = "batches0in0order"
    with recording_rig(xs, tmp_path, "OrderTerm") as (collector, state_dir, agents):
        agent = AgentProcess(collector.url, state_dir, xs.env, tmp_path / "agent.log")
        agents.append(agent)
        agent.wait_recording(collector)
        for i, ch in enumerate(text):  # ~2 s of mixed input: several upload intervals, so several batches
            xs.xdotool("mousemove", str(100 + 7 * i), str(100 + 3 * i), "click", "1",
                       "mousemove", str(110 + 7 * i), str(120 + 3 * i), "key", ch)
            time.sleep(0.1)
        time.sleep(FLUSH_S * 2)
        counters = agent.stop()
        devices = httpx.get(f"{collector.url}/v1/devices", headers=admin_headers(collector.data_dir), timeout=5).json()

    assert counters["backlog"] == 0 and counters["uploaded"] == counters["spooled"] > 0, counters
    [device] = devices
    assert device["n_batches"] >= 3, f"only {device['n_batches']} batches: ordering across batches is untested"
    sessions, counted = stored(tmp_path / "data")
    events = sessions[agent.session_id]
    assert counted == len(events) == counters["spooled"]
    assert_exactly_once_in_order(events)
    assert typed(events) == text
    story = [e["kind"] for e in events if e["kind"] in ("button_down", "button_up", "key_down")]
    assert story == ["button_down", "button_up", "key_down"] * len(text)
