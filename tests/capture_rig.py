"""A real desk for consent and scope tests: Xvfb + openbox, a real collector, the agent in this process.

The agent talks HTTP to a `deskcorder serve` subprocess; policies, employees
and consent are set through the store or the collector's HTTP API, and what
was stored is read back from the store on disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import CREDENTIAL_FILE, Agent, AgentConfig, Spool
from deskcorder.store import EventStore, NotFound

from .helpers import READ, TEST_ACTOR

FLUSH_S = 0.1
ALLOW_ALL = '[[apps]]\ntitle_include = [".*"]\n'  # a policy body: every application, any time
_PORTAL_PASSWORD = "a long portal password for capture tests"


@contextlib.contextmanager
def x_display() -> Iterator[XSession]:
    """An X session whose display this process's agent records (pynput reads $DISPLAY only)."""
    with XSession() as session:
        before = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = session.display or ""
        try:
            yield session
        finally:
            if before is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = before


@pytest.fixture(scope="module")
def xs() -> Iterator[XSession]:
    with x_display() as session:
        yield session


def terminal(xs: XSession, wm_class: str, title: str, geometry: str = "60x10+0+0") -> int:
    return xs.open_window(["xterm", "-class", wm_class, "-title", title, "-geometry", geometry, "-e", "cat"],
                          wm_class)


class Desk:
    """One collector (data_dir, url) shared by a module's tests; each test uses its own employee and device."""

    def __init__(self, data_dir: Path, url: str):
        self.data_dir, self.url = data_dir, url

    def set_policy(self, body: str) -> int:
        """Make ``body`` (a policy without ``version``) the current policy, as the next version."""
        with EventStore(self.data_dir) as store:
            version = store.current_policy().version + 1
            store.set_policy(f"version = {version}\nretention_days = 3650\n{body}", actor=TEST_ACTOR)
        return version

    def add_employee(self, handle: str) -> None:
        """An employee with a portal account (consent over HTTP is the person's own act, with their password)."""
        with EventStore(self.data_dir) as store:
            try:
                store.employee(handle)
            except NotFound:
                store.add_employee(handle, actor=TEST_ACTOR)
                store.portal.set_password(handle, _PORTAL_PASSWORD, role="employee", actor=TEST_ACTOR)

    def consent(self, handle: str, action: str) -> None:
        version = httpx.get(f"{self.url}/v1/policy", timeout=5).json()["version"]
        r = httpx.post(f"{self.url}/v1/employees/{handle}/consent", json={"action": action, "policy_version": version},
                       auth=(handle, _PORTAL_PASSWORD), timeout=5)
        assert r.status_code == 200, r.text

    def stored(self, device_id: str) -> list[dict[str, Any]]:
        with EventStore(self.data_dir) as store:
            rows = store.read_events(device_id=device_id, **READ).to_pylist()
        return sorted(rows, key=lambda e: (e["session_id"], e["seq"]))

    def token(self, handle: str) -> str:
        """A one-time enrolment token for a device of ``handle``, as `deskcorder device token` issues it."""
        with EventStore(self.data_dir) as store:
            return store.issue_enrolment_token(handle, actor=TEST_ACTOR)

    @contextlib.contextmanager
    def agent(self, state_dir: Path, employee: str, **config: Any) -> Iterator[Agent]:
        """The agent in this process, recording until the block ends; stopping uploads what is left.

        Enrolled for ``employee`` with a fresh token on its first start in ``state_dir``.
        """
        config.setdefault("flush_interval_s", FLUSH_S)
        config.setdefault("upload_interval_s", 0.2)
        if not (state_dir / CREDENTIAL_FILE).exists():
            config.setdefault("enrol_token", self.token(employee))
        agent = Agent(AgentConfig(server_url=self.url, state_dir=state_dir, **config))
        agent.start()
        try:
            time.sleep(0.3)  # the X RECORD context attaches asynchronously after start
            yield agent
        finally:
            agent.stop()
        assert agent.stats()["backlog"] == 0, f"events left unuploaded: {agent.stats()}"


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 3.0) -> float:
    """Seconds until ``predicate()`` is true; AssertionError naming ``what`` after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} within {timeout:.1f} s")
        time.sleep(0.01)
    return time.monotonic() - start


def typed(events: list[dict[str, Any]]) -> str:
    return "".join(e["char"] or f"<{e['key']}>" for e in events if e["kind"] == "key_down")


def story(events: list[dict[str, Any]]) -> list[Any]:
    """Markers as (kind, reason), FOCUS as its class, typed characters as themselves; other events left out."""
    out: list[Any] = []
    for e in events:
        if e["kind"] in ("pause", "resume"):
            out.append((e["kind"], e["reason"]))
        elif e["kind"] == "focus":
            out.append(e["app_class"])
        elif e["kind"] == "key_down":
            out.append(e["char"] or e["key"])
    return out


def spool_bytes(state_dir: Path) -> bytes:
    """The spool's raw bytes, WAL included: what a disk forensics tool would see."""
    return b"".join(p.read_bytes() for p in sorted(state_dir.glob(f"{Spool.FILE_NAME}*")))


def leaks(events: list[dict[str, Any]], *secrets: str) -> list[dict[str, Any]]:
    """Events whose text fields mention any of ``secrets`` (case-insensitive)."""
    pattern = re.compile("|".join(re.escape(s) for s in secrets), re.IGNORECASE)
    return [e for e in events if any(isinstance(e.get(f), str) and pattern.search(e[f])
                                     for f in ("app_class", "app_process", "window_title", "reason"))]
