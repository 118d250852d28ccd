"""`deskcorder demo`: the whole pipeline on one machine with embedded defaults.

Headless (no DISPLAY, or ``--scripted``): a throw-away X desktop (Xvfb +
openbox) with two real applications, the collector on a loopback port, and
the capture agent; xdotool then performs a scripted work session (typing,
clicks, a drag, scrolling, a hotkey, an app switch) and the dataset is built
from what the collector stored. With a display, the agent records the person
at the keyboard until Ctrl-C instead.

Everything runs in this process except the X server and the applications, so
the demo exercises the same code paths as a fleet deployment: agent ->
spool -> HTTP -> collector -> Parquet -> dataset builder.

Privacy by design is part of the demo, not switched off for it: the data dir
gets a policy allowing only the notes editor and the terminal, the demo
employee consents to it (as ``deskcorder consent give`` would record), the
agent enrols its device with a one-time token issued for them (as
``deskcorder device token`` would), authenticates every upload with the
credential it got for it, and records only once the collector confirms that
consent. The scripted session also types into a chat window the
policy does not allow, and an e-mail address into the notes: the first never
leaves the agent, the second reaches the dataset as ``<EMAIL>``.

Observations are on (``observe = "frames"``): at each action the agent takes
a picture of the allowed window in front, and the UI element under each
click. Where Debian's python3-gi is there, an accessible GTK form joins the
apps (started under /usr/bin/python3; the X session's private session D-Bus
lets AT-SPI answer for it), and the session clicks its button and types into
its name and password fields: the password field is black in the form's
frames from the click on it, the keys typed into it are not recorded, and the dataset counts the frames, the elements and the
regions masked. Without python3-gi the demo runs without the form and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

import uvicorn
from rich.console import Console
from rich.progress import Progress

from ._apps import GTK_FORM, GTK_FORM_CLASS, SYSTEM_PYTHON
from ._errors import DeskcorderError
from ._xsession import XSession, XSessionError
from .capture import CREDENTIAL_FILE, Agent, AgentConfig
from .collect import create_app
from .dataset import FORMATS, BuildOptions, build_from_store
from .store import EventStore, NotFound

__all__ = ["DemoResult", "run_demo", "scripted_session", "form_session", "embedded_collector", "ensure_consent",
           "DemoDeclined", "have_gtk_form"]

TERMINAL_CLASS = "DemoTerm"
CHAT_CLASS = "DemoChat"  # deliberately not in DEMO_POLICY: what is typed there is never recorded
DEMO_EMPLOYEE = "demo-user"
DEMO_TOKEN = "ghp_" + "R8mXq2Lw7Tz4Kp9Vn3Bc6Hd1Js5Fy0Ga8Ue2"  # fake, but shaped like a GitHub token
DEMO_ACTOR = "deskcorder-demo"
DEMO_FORM_NAME = "Ana Lopez"
# Typed into the form's password field. The agent, told by AT-SPI that the click landed on a password
# field, does not record these keys; random anyway, so the text Redactor would make it a <SECRET> too.
DEMO_PASSWORD = "Zq7Rw2Lm9Xv4Kp8N3bT6"
DEMO_POLICY = f"""\
version = 1
retention_days = 30
scope_text = "Demo: only the Notes editor, the demo terminal and the demo form are recorded; nothing else, ever."
observe = "frames"

[[apps]]
wm_class = "Notes"

[[apps]]
wm_class = "{TERMINAL_CLASS}"

[[apps]]
wm_class = "{GTK_FORM_CLASS}"
"""
LIVE_POLICY = """\
version = 1
retention_days = 30
scope_text = "Live demo: every application on this display except password prompts, until you press Ctrl-C."

[[apps]]
title_include = [".*"]
"""


class DemoDeclined(DeskcorderError, RuntimeError):
    """The person asked to be recorded live said no."""


@dataclasses.dataclass
class DemoResult:
    data_dir: Path
    dataset_dir: Path
    session_id: str
    stats: object
    form: bool = False  # the GTK form was part of the session (python3-gi was there)


@contextlib.contextmanager
def embedded_collector(store: EventStore) -> Iterator[str]:
    """Serve the collector on a free loopback port in a background thread; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only on the main thread; in a thread it leaves them alone.
    thread = threading.Thread(target=server.run, name="collector", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the embedded collector did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- the scripted work session --------------------------------------------------------------

def scripted_session(xs: XSession, notes: int, terminal: int, chat: int) -> list[tuple[str, Callable[[], None]]]:
    """The steps a person might take in ten seconds of note-taking, as (label, action) pairs."""
    def move(x: int, y: int) -> None:
        xs.xdotool("mousemove", "--window", str(notes), str(x), str(y))

    def type_text(text: str) -> None:
        xs.xdotool("type", "--delay", "40", text)

    def drag() -> None:
        move(20, 10)
        xs.xdotool("mousedown", "1")
        for x in range(40, 221, 30):
            move(x, 12)
            time.sleep(0.02)
        xs.xdotool("mouseup", "1")

    def scroll() -> None:
        move(400, 300)
        for _ in range(6):
            xs.xdotool("click", "5")
            time.sleep(0.03)

    return [
        ("focus the notes editor", lambda: xs.activate(notes)),
        ("click at the top of the document", lambda: (move(12, 12), xs.xdotool("click", "1"))),
        ("type a sentence", lambda: type_text("Deskcorder records work, with consent. ")),
        ("type an e-mail address", lambda: type_text("Mail ana.lopez@example.com today. ")),
        ("fix a typo with backspace", lambda: (type_text("Teh"), xs.xdotool("key", "BackSpace", "BackSpace"),
                                               type_text("he end."))),
        ("press Enter", lambda: xs.xdotool("key", "Return")),
        ("select text with a drag", drag),
        ("double-click a word", lambda: (move(60, 12), xs.xdotool("click", "--repeat", "2", "--delay", "80", "1"))),
        ("scroll down", scroll),
        ("save with Ctrl+S", lambda: xs.xdotool("key", "ctrl+s")),
        ("switch to the terminal", lambda: xs.activate(terminal)),
        ("type a command", lambda: (type_text("echo hello"), xs.xdotool("key", "Return"))),
        ("paste a token into the shell", lambda: (type_text(f"export GITHUB_TOKEN={DEMO_TOKEN}"),
                                                  xs.xdotool("key", "Return"))),
        ("chat in an app the policy does not allow", lambda: (xs.activate(chat),
                                                               type_text("this private chat is never recorded"))),
        ("switch back to the notes", lambda: xs.activate(notes)),
        ("right-click", lambda: (move(300, 200), xs.xdotool("click", "3"))),
    ]


def have_gtk_form() -> bool:
    """Debian's python3-gi with GTK 3 and a dbus-daemon: what the demo's accessible form needs (scripts/setup)."""
    if not (shutil.which("dbus-daemon") and os.path.exists(SYSTEM_PYTHON)):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gtk', '3.0')"],
                           capture_output=True)
    return probe.returncode == 0


def _open_form(xs: XSession, timeout: float = 20.0) -> dict:
    """Start the GTK form right of the notes editor; its widgets' boxes (root pixels) once the window is placed."""
    proc = xs.spawn([SYSTEM_PYTHON, str(GTK_FORM), "--title", "sign-up form", "--x", "900", "--y", "60"],
                    stdout=subprocess.PIPE)
    assert proc.stdout is not None
    # The form prints one JSON line of boxes when the window manager has stopped moving it (gtk_form.py).
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if not line:
        raise XSessionError(f"the GTK form printed no window within {timeout:.0f} s (exit status {proc.poll()})")
    return json.loads(line)


def form_session(xs: XSession, form: dict) -> list[tuple[str, Callable[[], None]]]:
    """Filling in the GTK form: the name, Submit, then the password (last, so no later frame shows its dots)."""
    def click(widget: str) -> None:
        box = form[widget]
        xs.xdotool("mousemove", str(box["x"] + box["width"] // 2), str(box["y"] + box["height"] // 2))
        xs.xdotool("click", "1")

    def type_text(text: str) -> None:
        time.sleep(0.6)  # the policy's 2 frames in any second: the click's and the typing's, not the next click's
        xs.xdotool("type", "--delay", "40", text)
        time.sleep(0.6)

    return [
        ("switch to the form", lambda: xs.activate(int(form["xid"]))),
        ("type a name into the form", lambda: (click("entry"), type_text(DEMO_FORM_NAME))),
        ("click the form's Submit button", lambda: click("submit")),
        ("type a password into the form", lambda: (click("password"), type_text(DEMO_PASSWORD))),
    ]


def _wait_for_upload(agent: Agent, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while agent.stats().get("backlog", 0) and time.monotonic() < deadline:
        time.sleep(0.1)


def _wait_for_recording(agent: Agent, timeout: float = 10.0) -> None:
    """The agent records nothing until the collector confirms consent; wait for that answer."""
    deadline = time.monotonic() + timeout
    while not agent.stats().get("recording"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the agent is not recording after {timeout:.0f} s: "
                               f"{agent.stats().get('gate_reason')}")
        time.sleep(0.05)


def ensure_consent(store: EventStore, policy_text: str, console: Console, *, ask: bool = False) -> None:
    """A policy, the demo employee and their consent to it: what an admin and the employee do first.

    ``ask``: the person at the keyboard is recorded, so they read the scope and say yes first.
    """
    if store.current_policy().version == 0:
        store.set_policy(policy_text, actor=DEMO_ACTOR, note="deskcorder demo")
    policy = store.current_policy()
    try:
        store.employee(DEMO_EMPLOYEE)
    except NotFound:
        store.add_employee(DEMO_EMPLOYEE, actor=DEMO_ACTOR, display_name="Demo User")
    history = store.consent_history(DEMO_EMPLOYEE)
    if not history or history[-1].action != "give" or history[-1].policy_version != policy.version:
        if ask:
            scope = policy.policy.scope_text if policy.policy is not None else ""
            answer = console.input(f"Policy v{policy.version}: {scope}\nRecord you under this policy? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise DemoDeclined("no consent given; nothing was recorded")
        store.record_consent(DEMO_EMPLOYEE, "give", policy_version=policy.version, method="cli", actor=DEMO_ACTOR)
    scope = policy.policy.scope_text if policy.policy is not None else ""
    console.print(f"policy v{policy.version}: {scope}")
    console.print(f"{DEMO_EMPLOYEE} consented to policy v{policy.version}")


def run_demo(data_dir: Path, *, scripted: bool, console: Console | None = None,
             options: BuildOptions = BuildOptions(formats=FORMATS)) -> DemoResult:
    console = console or Console()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(data_dir)
    try:
        ensure_consent(store, DEMO_POLICY if scripted else LIVE_POLICY, console, ask=not scripted)
        with embedded_collector(store) as url:
            console.print(f"collector: {url}  (data in {data_dir})")
            token = _enrol_token(store, data_dir / "agent")
            form = False
            if scripted:
                session_id, form = _record_scripted(data_dir, url, console, token)
            else:
                session_id = _record_live(data_dir, url, console, token)
        out = data_dir / "datasets" / f"{time.strftime('%Y%m%d-%H%M%S')}-{session_id[:8]}"
        stats = build_from_store(store, out, actor=DEMO_ACTOR, purpose="deskcorder demo dataset",
                                 options=options, session_id=session_id, console=console)
    finally:
        store.close()
    return DemoResult(data_dir, out, session_id, stats, form)


def _enrol_token(store: EventStore, state_dir: Path) -> str | None:
    """A token for the demo agent's first start (a later demo in the same data dir reuses its credential)."""
    if (state_dir / CREDENTIAL_FILE).exists():
        return None
    return store.issue_enrolment_token(DEMO_EMPLOYEE, actor=DEMO_ACTOR, ttl_s=600)


def _record_scripted(data_dir: Path, url: str, console: Console, token: str | None) -> tuple[str, bool]:
    """The scripted session; (session id, whether the GTK form was part of it)."""
    gtk = have_gtk_form()
    if not gtk:
        console.print("no GTK form: Debian's python3-gi (and dbus-daemon) are not installed (scripts/setup installs "
                      "them), so no UI elements are read; frames are still taken")
    # patch.dict gives this process's environment back as it was when the session ends.
    with XSession(session_bus=gtk) as xs, mock.patch.dict(os.environ, {"DISPLAY": xs.display or ""}):
        # pynput and Xlib read the display from $DISPLAY, the agent's element reader the bus from
        # $DBUS_SESSION_BUS_ADDRESS: the X session's own, or none (never the desktop's around the demo).
        os.environ.pop("AT_SPI_BUS_ADDRESS", None)
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        if xs.bus_address is not None:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = xs.bus_address
        notes_file = data_dir / "demo-notes.txt"
        notes = xs.open_window([sys.executable, "-m", "deskcorder._demo_editor", str(notes_file)], "Notes")
        terminal = xs.open_window(["xterm", "-class", TERMINAL_CLASS, "-title", "terminal",
                                   "-geometry", "100x30+200+120", "-e", "cat"], TERMINAL_CLASS)
        chat = xs.open_window(["xterm", "-class", CHAT_CLASS, "-title", "private chat",
                               "-geometry", "60x20+400+300", "-e", "cat"], CHAT_CLASS)
        form = _open_form(xs) if gtk else None
        xs.activate(notes)
        agent = Agent(AgentConfig(server_url=url, state_dir=data_dir / "agent", enrol_token=token,
                                  control_socket=False))
        agent.start()
        try:
            _wait_for_recording(agent)
            time.sleep(0.5)  # let the listeners attach before the first input
            steps = scripted_session(xs, notes, terminal, chat)
            if form is not None:  # after the terminal, before the chat and the way back to the notes
                steps[-3:-3] = form_session(xs, form)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("scripted work session", total=len(steps))
                for label, action in steps:
                    progress.update(task, description=label)
                    action()
                    time.sleep(0.3)
                    progress.advance(task)
            time.sleep(0.5)
        finally:
            agent.stop()  # its observer lets the AT-SPI reader go while the X session's bus is still there
        _wait_for_upload(agent)
        return agent.session_id or "", form is not None


def _record_live(data_dir: Path, url: str, console: Console, token: str | None) -> str:
    agent = Agent(AgentConfig(server_url=url, state_dir=data_dir / "agent", enrol_token=token))
    console.print("[bold]Recording your keyboard and mouse in this X session (password prompts excluded). "
                  "Press Ctrl-C to stop and build the dataset.[/bold]")
    agent.start()
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            s = agent.stats()
            console.print(f"\rcaptured {s.get('captured', 0)} events, uploaded {s.get('uploaded', 0)}", end="")
    finally:
        signal.signal(signal.SIGINT, previous)
        console.print()
        agent.stop()
    _wait_for_upload(agent)
    return agent.session_id or ""
