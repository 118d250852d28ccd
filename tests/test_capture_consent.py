"""Consent at the source: the agent records nothing until the collector confirms consent, and stops within a second.

Real X server, real collector (`deskcorder serve`), the agent in this
process; consent is given and withdrawn through the collector's HTTP API
while the agent runs, and what was stored is read back from disk.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import Agent, AgentConfig, AgentError, Spool
from deskcorder.store import EventStore

from .capture_rig import ALLOW_ALL, FLUSH_S, Desk, spool_bytes, story, terminal, typed, wait_for
from .capture_rig import xs  # noqa: F401  (a fixture)
from .helpers import TEST_ACTOR, start_collector

pytestmark = pytest.mark.x11

@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    data_dir = tmp_path_factory.mktemp("consent") / "data"
    with start_collector(data_dir) as url:
        desk = Desk(data_dir, url)
        desk.set_policy(ALLOW_ALL)
        yield desk


class Typist(threading.Thread):
    """Presses keys one xdotool call at a time and notes when each call returned (the X server had the key)."""

    def __init__(self, xs: XSession, alphabet: str = "abcdefghijklmnopqrstuvwxyz"):
        super().__init__(daemon=True)
        self.xs, self.alphabet = xs, alphabet
        self.sent: list[int] = []  # time.monotonic_ns(): the agent's clock too
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.xs.xdotool("key", self.alphabet[len(self.sent) % len(self.alphabet)])
            self.sent.append(time.monotonic_ns())

    def finish(self) -> None:
        self.halt.set()
        self.join(10)


def test_nothing_is_recorded_before_consent_and_recording_starts_once_given(xs: XSession, desk: Desk,
                                                                           tmp_path: Path) -> None:
    handle = "consent-later"
    desk.add_employee(handle)  # no consent yet; the agent enrols its device itself (--enrol-token)
    xs.activate(terminal(xs, "BeforeTerm", "before consent"))
    with desk.agent(tmp_path, handle) as agent:
        assert (agent.stats()["recording"], agent.stats()["gate_reason"]) == (False, "no_consent")
        xs.xdotool("type", "--delay", "10", "xyz")
        xs.xdotool("mousemove", "150", "150", "click", "1")
        time.sleep(FLUSH_S * 3)
        assert agent.stats()["captured"] == 0 and b"BeforeTerm" not in spool_bytes(tmp_path)
        desk.consent(handle, "give")
        took = wait_for(lambda: agent.stats()["recording"], "recording did not start after consent", 2.0)
        xs.xdotool("type", "--delay", "10", "abc")
        time.sleep(FLUSH_S * 3)

    print(f"\nconsent given -> recording after {took * 1000:.0f} ms")
    events = desk.stored(agent.device_id)
    assert story(events) == ["BeforeTerm", "a", "b", "c"], "a session starts recording at consent, without markers"


def test_withdrawing_consent_stops_capture_within_a_second(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = "consent-withdraw"
    desk.add_employee(handle)
    desk.consent(handle, "give")
    xs.activate(terminal(xs, "WithdrawTerm", "withdraw"))
    with desk.agent(tmp_path, handle) as agent:
        wait_for(lambda: agent.stats()["recording"], "recording did not start")
        typist = Typist(xs)
        typist.start()
        try:
            time.sleep(0.6)
            withdrawn_at = time.monotonic_ns()  # before the request: the latency measured is an upper bound
            desk.consent(handle, "withdraw")
            wait_for(lambda: not agent.stats()["recording"], "recording did not stop after the withdrawal", 2.0)
            time.sleep(1.0)  # keep typing: none of it may be recorded
        finally:
            typist.finish()
        time.sleep(FLUSH_S * 3)
        assert agent.stats()["gate_reason"] == "consent_withdrawn"

    events = desk.stored(agent.device_id)
    pause = [e for e in events if e["kind"] == "pause"]
    assert [(e["reason"]) for e in pause] == ["consent_withdrawn"] and events[-1] is pause[0], story(events)[-5:]
    keys = [e for e in events if e["kind"] == "key_down"]
    last_key_s = (keys[-1]["t_mono_ns"] - withdrawn_at) / 1e9
    marker_s = (pause[0]["t_mono_ns"] - withdrawn_at) / 1e9
    typed_after = sum(1 for t in typist.sent if t > pause[0]["t_mono_ns"])
    print(f"\nwithdrawal -> PAUSE marker after {marker_s * 1000:.0f} ms, last key recorded "
          f"{last_key_s * 1000:.0f} ms after; {len(keys)} keys recorded, {typed_after} typed after the marker "
          f"and dropped")
    assert marker_s < 1.0 and last_key_s < 1.0
    assert typed_after >= 10, "the typist stopped too early to show that capture stopped"
    assert typed(events) == "".join(typist.alphabet[i % 26] for i in range(len(keys)))  # every key up to then


def test_the_collector_sets_every_agents_upload_and_status_cadence(xs: XSession, tmp_path: Path) -> None:
    """A fleet's collectors tell agents how often to upload and to ask (the agent's own settings differ)."""
    data_dir = tmp_path / "data"
    with start_collector(data_dir, "--agent-upload-interval", "1.5", "--agent-status-interval", "0.25") as url:
        desk = Desk(data_dir, url)
        desk.set_policy(ALLOW_ALL)
        desk.add_employee("cadence-person")
        desk.consent("cadence-person", "give")
        xs.activate(terminal(xs, "CadenceTerm", "cadence"))
        with desk.agent(tmp_path / "agent", "cadence-person", status_poll_s=2.0, upload_interval_s=0.2) as agent:
            assert (agent.poller.interval_s, agent.uploader.interval_s) == (0.25, 1.5)
            wait_for(lambda: agent.stats()["recording"], "recording did not start")
            typist = Typist(xs)
            typist.start()
            try:
                uploads = []  # when the uploaded count moved: one batch each time, every ~1.5 s
                start = time.monotonic()
                last = agent.stats()["uploaded"]
                while time.monotonic() - start < 4.0:
                    now = agent.stats()["uploaded"]
                    if now != last:
                        uploads.append(time.monotonic() - start)
                        last = now
                    time.sleep(0.01)
                withdrawn_at = time.monotonic()
                desk.consent("cadence-person", "withdraw")
                # The collector's 0.25 s poll, not the agent's own 2 s, decides how soon capture stops.
                took = wait_for(lambda: not agent.stats()["recording"], "recording did not stop", 1.5)
            finally:
                typist.finish()
    # An upload drains the spool back to back (a chunk spooled meanwhile goes in the same round).
    rounds = [u for i, u in enumerate(uploads) if i == 0 or u - uploads[i - 1] > 0.5]
    gaps = [b - a for a, b in zip(rounds, rounds[1:])]
    print(f"\nuploads at {[round(u, 2) for u in uploads]} s; withdrawal heard after {took * 1000:.0f} ms "
          f"(request sent {(withdrawn_at - start) * 1000:.0f} ms in)")
    assert 2 <= len(rounds) <= 4 and all(g >= 1.3 for g in gaps), uploads  # not every 0.2 s
    assert took < 0.25 + 0.5


def test_an_unreachable_collector_at_start_means_nothing_is_recorded(xs: XSession, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    xs.activate(terminal(xs, "OfflineTerm", "offline"))
    agent = Agent(AgentConfig(server_url=url, state_dir=tmp_path, enrol_token="dcet_never-exchanged",
                              flush_interval_s=FLUSH_S, status_poll_s=0.1))
    agent.start()
    try:
        time.sleep(0.3)
        xs.xdotool("type", "--delay", "10", "xyz")
        time.sleep(FLUSH_S * 3)
        stats = agent.stats()
    finally:
        agent.stop(timeout=0.5)
    assert (stats["recording"], stats["gate_reason"], stats["captured"]) == (False, "collector_unreachable", 0)
    assert "collector unreachable" in stats["consent_detail"]
    spool = Spool(tmp_path / Spool.FILE_NAME)
    try:
        assert spool.read_events().num_rows == 0
    finally:
        spool.close()


def test_a_bad_token_or_a_device_of_someone_else_is_refused_with_the_fix(desk: Desk, tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="unknown enrolment token.*deskcorder device token --employee"):
        Agent(AgentConfig(server_url=desk.url, state_dir=tmp_path / "a", enrol_token="dcet_made-up")).start()
    with pytest.raises(AgentError, match="not enrolled.*--enrol-token"):
        Agent(AgentConfig(server_url=desk.url, state_dir=tmp_path / "a")).start()

    desk.add_employee("owner-a")
    desk.add_employee("owner-b")
    with EventStore(desk.data_dir) as store:
        store.register_device("device-of-owner-a", "owner-a", "desk-a", actor=TEST_ACTOR)
    with pytest.raises(AgentError, match="registered to another employee.*delete .*device_id"):
        Agent(AgentConfig(server_url=desk.url, state_dir=tmp_path / "b", device_id="device-of-owner-a",
                          enrol_token=desk.token("owner-b"))).start()

    used = desk.token("owner-b")
    with EventStore(desk.data_dir) as store:
        store.enrol_device(used, "device-of-owner-b", "desk-b", actor=TEST_ACTOR)  # another desk used it first
    cli = subprocess.run([sys.executable, "-m", "deskcorder", "agent", "--server", desk.url, "--state-dir",
                          str(tmp_path / "d"), "--enrol-token", used], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "DISPLAY": ""})
    assert cli.returncode == 2 and "already used" in cli.stderr, cli
    assert "deskcorder device token --employee HANDLE" in cli.stderr
