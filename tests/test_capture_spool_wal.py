"""Once the collector acknowledges an upload, no byte of its typed text is left in any file of the state dir.

Real parts only: Xvfb + openbox, xdotool typing into an xterm, `deskcorder
serve` and `deskcorder agent` in their own processes, the agent's state dir
read byte by byte while the agent still runs (on a clean stop SQLite removes
the WAL anyway; a crash, or an agent that runs all day, does not).

How typed text looks in the spool (``capture/_spool.py``): a chunk is the
event columns as MessagePack, so each key is a row of its own: ``char``
holds ``\\xa1`` + the character per key_down and key_up, and ``vk`` the
keysym, which for a lowercase letter is its ASCII code as a one-byte
MessagePack int, so "abc" is ``aabbcc``. The marker is searched in those
forms and as plain text (ASCII, UTF-16), a few characters at a time, so
a marker split between two chunks or two pages is still found. The marker
uses letters g-z only, which never occur in the hex session and batch ids
that fill the rest of the spool.

The positive control comes first: with the collector down, the same search
must find the marker in the spool, or the test proves nothing.
"""

from __future__ import annotations

import os
import random
import re
import stat
import time
from pathlib import Path
from typing import Iterator

import pytest

from deskcorder._xsession import XSession
from deskcorder.capture import send_command

from .test_capture_durability import FLUSH_S, AgentProcess, recording_rig, spool_backlog, stored, typed, wait_until

pytestmark = pytest.mark.x11

# The bound the docs state (capture/_spool.py): the scrub runs with the acknowledgement, and is
# retried every Spool.SCRUB_RETRY_S (1 s) while another process reads the spool. The extra second
# is the test's own polling of the agent's status and a loaded machine's scheduling.
SCRUB_BOUND_S = 2.0
_NGRAM = 4  # characters of the marker that together count as a leak
_GAP = 12  # bytes allowed between two keys' values in one column (other events' values, nils)


@pytest.fixture(scope="module")
def xs() -> Iterator[XSession]:
    with XSession() as session:
        yield session


def marker(rng: random.Random, n: int = 14) -> str:
    letters = "ghijklmnopqrstuvwxyz"
    out = [rng.choice(letters)]
    while len(out) < n:
        ch = rng.choice(letters)
        if ch != out[-1]:  # no doubled letters: "aabb" must mean one key each in the keysym column
            out.append(ch)
    return "".join(out)


def leak_patterns(text: str) -> list[tuple[str, re.Pattern[bytes]]]:
    """Every way ``text`` (or any _NGRAM consecutive characters of it) can sit in the state dir's files."""
    grams = [text[i:i + _NGRAM] for i in range(len(text) - _NGRAM + 1)]
    gap = b".{0,%d}?" % _GAP
    forms: dict[str, list[bytes]] = {"text": [], "utf-16": [], "msgpack char column": [], "keysym column": []}
    for g in grams:
        forms["text"].append(re.escape(g.encode()))
        forms["utf-16"] += [re.escape(g.encode("utf-16-le")), re.escape(g.encode("utf-16-be"))]
        forms["msgpack char column"].append(gap.join(re.escape(b"\xa1" + c.encode()) for c in g))
        forms["keysym column"].append(gap.join(re.escape(c.encode() * 2) for c in g))
    return [(name, re.compile(b"|".join(alts), re.DOTALL)) for name, alts in forms.items()]


def leaks(state_dir: Path, text: str) -> list[str]:
    """'file: form' for every regular file of ``state_dir`` that holds ``text`` in some form."""
    found = []
    patterns = leak_patterns(text)
    for path in sorted(state_dir.iterdir()):
        if not path.is_file():
            continue  # control.sock
        raw = path.read_bytes()
        found += [f"{path.name}: {name}" for name, pattern in patterns if pattern.search(raw)]
    return found


def modes(state_dir: Path) -> dict[str, str]:
    out = {".": oct(stat.S_IMODE(state_dir.stat().st_mode))}
    for path in state_dir.iterdir():
        out[path.name] = oct(stat.S_IMODE(path.lstat().st_mode))
    return out


def test_acknowledged_typing_is_gone_from_every_file_of_the_state_dir_within_the_bound(
        xs: XSession, tmp_path: Path) -> None:
    secret = marker(random.Random())
    previous_umask = os.umask(0o022)  # the usual default, under which the spool was 0644
    try:
        with recording_rig(xs, tmp_path, "WalTerm") as (collector, state_dir, agents):
            agent = AgentProcess(collector.url, state_dir, xs.env, tmp_path / "agent.log")
            agents.append(agent)
            agent.wait_recording(collector)

            # Positive control: unacknowledged, the marker is in the spool and the search sees it.
            collector.kill()
            xs.xdotool("type", "--delay", "15", secret)
            wait_until(lambda: spool_backlog(state_dir) >= 2 * len(secret), "the typed marker was not spooled", 5)
            assert leaks(state_dir, secret), "the marker is not found in the spool while it waits there: the " \
                                             "search cannot see how the spool stores keys"

            collector.restart()
            wait_until(lambda: (s := send_command(state_dir, "status"))["backlog"] == 0 and s["uploaded"] > 0,
                       "the collector did not acknowledge the marker", 15)
            acknowledged = time.monotonic()
            status = send_command(state_dir, "status")
            time.sleep(SCRUB_BOUND_S)
            left = leaks(state_dir, secret)
            file_modes = modes(state_dir)
            counters = agent.stop()
    finally:
        os.umask(previous_umask)

    assert status["backlog"] == 0 and counters["backlog"] == 0, (status, counters)
    sessions, _ = stored(tmp_path / "data")
    assert secret in typed(sessions[agent.session_id]), "the collector did not store the marker"
    assert not left, (f"{time.monotonic() - acknowledged:.1f} s after the collector acknowledged the upload "
                      f"(uploaded {status['uploaded']}, backlog 0) the typed marker is still readable in: {left}")
    assert file_modes.pop(".") == "0o700", f"the state dir is not private: {file_modes}"
    assert all(m == "0o600" for m in file_modes.values()), f"files readable by others under umask 022: {file_modes}"
    assert {"spool.db", "spool.db-wal", "credential", "device_id"} <= set(file_modes), file_modes
    print(f"\nspool scrub: marker of {len(secret)} keys absent from {len(file_modes)} files "
          f"{SCRUB_BOUND_S:.1f} s after the acknowledgement (flush {FLUSH_S} s)")
