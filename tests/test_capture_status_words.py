"""The agent's status words say what is true: from its first line, in `deskcorder agent status`, and at its end.

Real parts: Xvfb + openbox with xterms, `deskcorder serve`, and `deskcorder
agent` as the person runs it (its own process, talking to it through its
control socket with `deskcorder agent status`).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import send_command
from deskcorder.store import EventStore

from .capture_rig import Desk, terminal, wait_for
from .capture_rig import xs  # noqa: F401  (a fixture)
from .helpers import TEST_ACTOR, _stop, start_collector

pytestmark = pytest.mark.x11


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    data_dir = tmp_path_factory.mktemp("words") / "data"
    with start_collector(data_dir) as url:
        desk = Desk(data_dir, url)
        desk.set_policy('[[apps]]\nwm_class = "WordsIn"\n')
        yield desk


class CliAgent:
    """`deskcorder agent --server URL --enrol-token TOKEN`, its output kept in a file."""

    def __init__(self, xs: XSession, url: str, state_dir: Path, token: str, log: Path):
        self.state_dir, self.log = state_dir, log
        self._out = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deskcorder", "agent", "--server", url, "--state-dir", str(state_dir),
             "--enrol-token", token, "--status-interval", "0.2"],
            stdout=self._out, stderr=subprocess.STDOUT, text=True, env={**xs.env, "PYTHONUNBUFFERED": "1"})
        wait_for(lambda: "session" in self.output() or self.proc.poll() is not None, "the agent did not start", 30)
        assert self.proc.poll() is None, self.output()
        wait_for(lambda: (self.state_dir / "control.sock").exists(), "no control socket", 10)

    def output(self) -> str:
        return self.log.read_text()

    def first_line(self) -> str:
        """The first line the agent itself printed (log lines of the enrolment may come before it)."""
        return next(line for line in self.output().splitlines() if line.startswith("deskcorder agent ")
                    and " session " in line)

    def state(self) -> str:
        s = send_command(self.state_dir, "status")
        return "recording" if s["recording"] else s["gate_reason"]

    def wait_state(self, word: str, timeout: float = 5.0) -> None:
        wait_for(lambda: self.state() == word, f"the agent's state did not become {word!r} "
                                                f"(it is {self.state()!r})", timeout)

    def close(self) -> None:
        _stop(self.proc)
        self._out.close()


def cli_status(state_dir: Path) -> tuple[str, dict]:
    """`deskcorder agent status`: its first line, and the --json object."""
    run = [sys.executable, "-m", "deskcorder", "agent", "status", "--state-dir", str(state_dir)]
    text = subprocess.run(run, capture_output=True, text=True, timeout=30)
    as_json = subprocess.run(run + ["--json"], capture_output=True, text=True, timeout=30)
    assert text.returncode == 0 and as_json.returncode == 0, (text, as_json)
    return text.stdout.splitlines()[0], json.loads(as_json.stdout)


def test_an_agent_that_cannot_reach_the_collector_says_collector_unreachable_from_its_first_line(
        xs: XSession, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    xs.activate(terminal(xs, "WordsIn", "unreachable"))
    agent = CliAgent(xs, url, tmp_path / "agent", "dcet_not-exchanged-yet", tmp_path / "agent.log")
    try:
        first = agent.first_line()
        line, status = cli_status(agent.state_dir)
    finally:
        agent.close()
    assert "not recording (collector_unreachable)" in first and "agent recording" not in first, first
    assert line.startswith("not recording (collector_unreachable): collector unreachable (ConnectError"), line
    assert "enrolment token is exchanged once it answers" in line, line
    assert (status["state"], status["recording"], status["captured"]) == ("collector_unreachable", False, 0), status
    assert "no_consent" not in agent.output(), agent.output()


def test_status_words_follow_enrolment_consent_scope_pause_and_revocation(
        xs: XSession, desk: Desk, tmp_path: Path) -> None:
    inside = terminal(xs, "WordsIn", "in scope")
    outside = terminal(xs, "WordsOut", "out of scope", geometry="60x10+0+300")
    xs.activate(inside)
    desk.add_employee("words")
    agent = CliAgent(xs, desk.url, tmp_path / "agent", desk.token("words"), tmp_path / "agent.log")
    try:
        first = agent.first_line()
        said = {"start": cli_status(agent.state_dir)}
        with EventStore(desk.data_dir) as store:
            store.record_consent("words", "give", policy_version=store.current_policy().version, method="api",
                                 actor=TEST_ACTOR)
        agent.wait_state("recording")
        said["consent"] = cli_status(agent.state_dir)
        xs.activate(outside)
        agent.wait_state("out_of_scope")
        said["outside"] = cli_status(agent.state_dir)
        xs.activate(inside)
        agent.wait_state("recording")
        send_command(agent.state_dir, "pause")
        said["pause"] = cli_status(agent.state_dir)
        send_command(agent.state_dir, "resume")
        agent.wait_state("recording")
        device_id = (agent.state_dir / "device_id").read_text().strip()
        with EventStore(desk.data_dir) as store:
            store.revoke_device(device_id, actor=TEST_ACTOR, reason="the status words test")
        wait_for(lambda: agent.proc.poll() is not None, "the revoked agent did not stop", 10)
        output = agent.output()
    finally:
        agent.close()

    enrolled = [line for line in output.splitlines() if "enrolled with the collector" in line]
    assert len(enrolled) == 1 and ": INFO: " in enrolled[0], enrolled
    assert "WARNING" not in output.split(first)[0], output
    assert "not recording (no_consent)" in first and "agent recording" not in first, first
    assert said["start"][0].startswith("not recording (no_consent): You have not agreed"), said["start"]
    for when, word in (("start", "no_consent"), ("consent", "recording"), ("outside", "out_of_scope"),
                       ("pause", "paused_by_user")):
        line, status = said[when]
        assert status["state"] == word and line.startswith(word if word == "recording" else
                                                            f"not recording ({word})"), (when, said[when])
    assert agent.proc.returncode == 1, output
    assert re.search(r"error: revoked: the collector refuses this device: device '[^']+' was revoked", output), output
    assert re.search(r"agent stopped: .*, state revoked$", output, re.MULTILINE), output
