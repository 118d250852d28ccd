"""Talking to a running agent: ``deskcorder agent pause|resume|status`` over ``<state_dir>/control.sock``.

A Unix socket, because the answer matters: "paused" is printed only once
the agent has stopped recording, and "no agent is running" is told apart
from "the agent did not answer". One request per connection, one line each
way: the command (``pause``, ``resume`` or ``status``), then a JSON object.

Only the agent's own user may use it: the socket file is made 0600 and
every connection's peer credentials are checked, so another local user can
neither pause nor resume this person's recording nor read its status.

Socket paths are limited to about 107 bytes; for a longer state directory
the path goes through ``/proc/self/fd/<directory fd>/``, which Linux
resolves like the real directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import struct
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from ._errors import AgentError

__all__ = ["COMMANDS", "SOCKET_NAME", "ControlServer", "send_command"]

log = logging.getLogger("deskcorder.capture")

SOCKET_NAME = "control.sock"
COMMANDS = ("pause", "resume", "status")
_MAX_PATH = 100  # sun_path is 108 bytes with the terminating NUL; keep a margin
_MAX_REQUEST = 256


@contextlib.contextmanager
def _address(state_dir: Path) -> Iterator[str]:
    path = str(Path(state_dir) / SOCKET_NAME)
    if len(os.fsencode(path)) <= _MAX_PATH:
        yield path
        return
    fd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{SOCKET_NAME}"
    finally:
        os.close(fd)


class ControlServer:
    """Serve ``handle(command) -> dict`` on ``<state_dir>/control.sock`` from a thread."""

    def __init__(self, state_dir: Path, handle: Callable[[str], dict[str, Any]]):
        self.path = Path(state_dir) / SOCKET_NAME
        self._state_dir = Path(state_dir)
        self._handle = handle
        self._sock: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="deskcorder-control", daemon=True)

    def start(self) -> None:
        # The caller holds the state directory's agent lock: a socket file left here is a dead agent's.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _address(self._state_dir) as address:
                sock.bind(address)
            os.chmod(self.path, 0o600)
            sock.listen(8)
        except OSError as exc:
            sock.close()
            raise AgentError(f"cannot create the control socket {self.path}: {exc.strerror or exc}; check the "
                             f"state directory is writable") from exc
        self._sock = sock
        self._thread.start()

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _run(self) -> None:
        assert self._sock is not None
        while True:
            ready, _, _ = select.select([self._sock, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    self._serve(conn)
                except Exception as exc:  # one bad client must not end the control channel
                    log.warning("control socket request failed: %s", exc)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        if uid != os.getuid():
            _reply(conn, {"ok": False, "error": f"only user {os.getuid()} may control this agent"})
            return
        request = b""
        while not request.endswith(b"\n") and len(request) < _MAX_REQUEST:
            chunk = conn.recv(_MAX_REQUEST)
            if not chunk:
                break
            request += chunk
        command = request.decode("utf-8", "replace").strip()
        if command not in COMMANDS:
            _reply(conn, {"ok": False, "error": f"unknown command {command[:40]!r}; use {', '.join(COMMANDS)}"})
            return
        _reply(conn, {"ok": True, **self._handle(command)})


def _reply(conn: socket.socket, body: dict[str, Any]) -> None:
    conn.sendall(json.dumps(body, default=str).encode() + b"\n")


def send_command(state_dir: Path, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one command to the agent running with ``state_dir``; AgentError when there is none or it fails."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; use {', '.join(COMMANDS)}")
    state_dir = Path(state_dir)
    no_agent = (f"no agent is running with state directory {state_dir} (nothing listens on "
                f"{state_dir / SOCKET_NAME}); start one with: deskcorder agent --server URL --state-dir {state_dir}")
    if not state_dir.is_dir():
        raise AgentError(no_agent)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _address(state_dir) as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError):
            raise AgentError(no_agent) from None
        except OSError as exc:
            raise AgentError(f"cannot reach the agent at {state_dir / SOCKET_NAME}: {exc.strerror or exc}") from exc
        try:
            sock.sendall(command.encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            raise AgentError(f"the agent at {state_dir / SOCKET_NAME} did not answer {command!r}: "
                             f"{exc.strerror or exc}") from exc
    try:
        body = json.loads(answer)
    except ValueError:
        raise AgentError(f"the agent at {state_dir / SOCKET_NAME} sent no valid answer to {command!r}") from None
    if not body.get("ok"):
        raise AgentError(f"the agent refused {command!r}: {body.get('error')}")
    return body
