"""What frames cost: agent CPU and bytes per hour with ``observe = "frames"`` beside observations off, same run.

    python benchmarks/agent_frames.py [--rounds 2] [--seconds 30] [--actions-hz 1]

Starts a private X server (Xvfb + openbox) with a 1200x760 xterm showing a
page of text, a `deskcorder serve` collector with an enrolled device, and
then, alternating, `deskcorder agent` as it runs in production under a
policy with observations off and under the same policy with ``observe =
"frames"`` (default settings: at most 2 frames a second, long side 1280,
WebP). Between runs the admin sets the other policy as a new version and
the employee agrees to it, as they would.

The desk: a separate driver process (XTest) makes about ``--actions-hz``
action boundaries a second, cycling through a click, a typed word (the
first key is the boundary; the word's other keys are typing), a scroll of
three steps and a shortcut (ctrl+e), with 4 pointer moves a second in
between, on an absolute schedule. The xterm echoes what is typed, so
frames change.

CPU is the agent process's CPU clock (user + system, every thread, in ns)
over the measured window (after a warm-up) divided by wall time, as % of
one core. Bytes: the frames the agent encoded, the observation request
bodies the collector acknowledged, and the sealed files the collector
stored (observations and events, its SQLite files left out), each per hour
of this desk. min / median / max over
the rounds. Goals (issue 12): frames on <= 3 % of one core, <= 50 MB/h.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_cpu import HANDLE, _terminate, collector, cpu_ns  # noqa: E402  (the same rig's parts)

DEVICE_ID = "bench-frames-device"
_PASSWORD = "a long portal password for the frames benchmark"
POLICY = """\
version = {version}
scope_text = "Benchmark: the terminal."
retention_days = 30
{observe}
[[apps]]
wm_class = "BenchDesk"
"""
_SETTLE_S = 2.5  # between the warm-up and the measured window: the warm-up's uploads go out (2 s bound)
TEXT = "\n".join(f"{i:3d}  The quarterly report is due on Friday; figures for region {i % 7} are in the "
                 f"shared folder, row {i * 13 % 97}." for i in range(60))


def drive(display_name: str, seconds: float, actions_hz: float, warmup: float) -> None:
    """Action boundaries at ``actions_hz`` (click, word, scroll, shortcut in turn), 4 moves/s: ``warmup``
    seconds, a pause of ``_SETTLE_S`` (its uploads go out), "measuring", then ``seconds`` more; prints the
    counts of the measured part."""
    import Xlib.display
    import Xlib.X
    import Xlib.XK
    from Xlib.ext import xtest

    display = Xlib.display.Display(display_name)
    code = {c: display.keysym_to_keycode(Xlib.XK.string_to_keysym(c)) for c in "abcdefghijklmnopqrstuvwxyz"}
    ctrl = display.keysym_to_keycode(Xlib.XK.string_to_keysym("Control_L"))

    def tap(keycode: int) -> None:
        xtest.fake_input(display, Xlib.X.KeyPress, keycode)
        xtest.fake_input(display, Xlib.X.KeyRelease, keycode)

    def button(number: int) -> None:
        xtest.fake_input(display, Xlib.X.ButtonPress, number)
        xtest.fake_input(display, Xlib.X.ButtonRelease, number)

    words = ["report", "figures", "friday", "region", "folder"]
    print("ready", flush=True)
    start = time.monotonic()
    actions = moves = 0
    measuring: tuple[float, int, int] | None = None
    while True:
        due = start + actions / actions_hz
        if measuring is None and due >= start + warmup:
            time.sleep(_SETTLE_S)
            print("measuring", flush=True)
            start += time.monotonic() - due  # the schedule goes on from here
            due = start + actions / actions_hz
            measuring = (time.monotonic(), actions, moves)
        if measuring is not None and due >= measuring[0] + seconds:
            break
        while time.monotonic() < due:  # pointer moves until the next action
            x, y = 200 + (moves * 37) % 800, 150 + (moves * 53) % 500
            xtest.fake_input(display, Xlib.X.MotionNotify, x=x, y=y)
            display.sync()
            moves += 1
            time.sleep(max(0.0, min(0.25, due - time.monotonic())))
        kind = actions % 4
        if kind == 0:
            button(1)
        elif kind == 1:
            for c in words[actions % len(words)] + " ":
                tap(code.get(c, code["a"]) if c != " " else display.keysym_to_keycode(Xlib.XK.XK_space))
                display.sync()
                time.sleep(0.04)
        elif kind == 2:
            for _ in range(3):
                button(5)
                display.sync()
                time.sleep(0.03)
        else:
            xtest.fake_input(display, Xlib.X.KeyPress, ctrl)
            tap(code["e"])
            xtest.fake_input(display, Xlib.X.KeyRelease, ctrl)
        display.sync()
        actions += 1
    display.close()
    assert measuring is not None
    print(json.dumps({"actions": actions - measuring[1], "moves": moves - measuring[2],
                      "seconds": time.monotonic() - measuring[0]}), flush=True)


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _stored(data_dir: Path) -> dict[str, int]:
    """Bytes of sealed files the collector stored: events and observations (its SQLite files left out)."""
    return {kind: _tree_bytes(data_dir / kind) for kind in ("events", "observations")}


class Rig:
    def __init__(self, stack: contextlib.ExitStack, args: argparse.Namespace):
        from deskcorder._xsession import XSession
        from deskcorder.store import EventStore

        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="deskcorder-agent-frames-"))
        self.data_dir, self.state_dir = self.tmp / "data", self.tmp / "agent"
        self.state_dir.mkdir(parents=True)
        (self.state_dir / "device_id").write_text(DEVICE_ID + "\n")
        self.version = 0
        with EventStore(self.data_dir) as store:
            self._set_policy(store, "none")
            store.add_employee(HANDLE, actor="benchmark")
            store.portal.set_password(HANDLE, _PASSWORD, role="employee", actor="benchmark")
            store.record_consent(HANDLE, "give", policy_version=self.version, method="api", actor="benchmark")
            self.token = store.issue_enrolment_token(HANDLE, actor="benchmark")
        self.xs = stack.enter_context(XSession())
        _, self.url = stack.enter_context(collector(self.data_dir))
        page = self.tmp / "page.txt"
        page.write_text(TEXT + "\n")
        window = self.xs.open_window(["xterm", "-class", "BenchDesk", "-geometry", "171x54+0+0", "-e", "sh", "-c",
                                      f"cat {page}; exec cat"], "BenchDesk")
        self.xs.activate(window)

    def _set_policy(self, store: Any, observe: str) -> None:
        self.version += 1
        line = f'observe = "{observe}"\n' if observe != "none" else ""
        store.set_policy(POLICY.format(version=self.version, observe=line), actor="benchmark")

    def _consent(self) -> None:
        """The employee agrees over HTTP, as at /me: the collector hears it (and so the new policy) at once; a
        change written by another process (this one, through the store) it would only read within 120 s."""
        import httpx

        r = httpx.post(f"{self.url}/v1/employees/{HANDLE}/consent", auth=(HANDLE, _PASSWORD), timeout=10,
                       json={"action": "give", "policy_version": self.version})
        if r.status_code != 200:
            raise SystemExit(f"consent to policy version {self.version} failed: {r.status_code} {r.text}")

    def measure(self, observe: str) -> dict[str, float]:
        from deskcorder.capture import send_command
        from deskcorder.store import EventStore

        with EventStore(self.data_dir) as store:  # a new version, agreed to again: what a change takes
            self._set_policy(store, observe)
        self._consent()
        log = self.tmp / f"agent-{observe}-{self.version}.log"
        argv = [sys.executable, "-m", "deskcorder", "agent", "--server", self.url, "--state-dir",
                str(self.state_dir), "--enrol-token", self.token]
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    env={**self.xs.env, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 30
            while "session" not in log.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the agent did not start:\n{log.read_text()}")
                time.sleep(0.05)
            time.sleep(1.0)
            driver = subprocess.Popen([sys.executable, __file__, "--drive", self.xs.display or "", "--seconds",
                                       str(self.args.seconds), "--actions-hz", str(self.args.actions_hz),
                                       "--warmup", str(self.args.warmup_seconds)],
                                      stdout=subprocess.PIPE, text=True, env=self.xs.env)
            assert driver.stdout is not None
            if driver.stdout.readline().strip() != "ready":
                raise SystemExit("the input driver did not start")
            # Warm-up: the first frame imports Pillow and redirects the window, the first click starts the
            # AT-SPI reader; once a session, not per hour.
            if driver.stdout.readline().strip() != "measuring":
                raise SystemExit("the input driver did not finish its warm-up")
            before = send_command(self.state_dir, "status")["observations"]
            stored0 = _stored(self.data_dir)
            cpu0, t0 = cpu_ns(proc.pid), time.monotonic()
            sent = json.loads(driver.stdout.readline())
            driver.wait()
            wall = time.monotonic() - t0
            cpu = 100 * (cpu_ns(proc.pid) - cpu0) / 1e9 / wall
            time.sleep(3.0)  # the last uploads (2 s latency bound)
            obs = send_command(self.state_dir, "status")["observations"]
            stored = {kind: size - stored0[kind] for kind, size in _stored(self.data_dir).items()}
        finally:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            _terminate(proc)
        per_hour = 3600 / wall
        return {"cpu_pct": cpu, "actions": sent["actions"], "frames": obs["frames"] - before["frames"],
                "frame_mb_h": (obs["frame_bytes"] - before["frame_bytes"]) * per_hour / 1e6,
                "sent_mb_h": (obs["sent_bytes"] - before["sent_bytes"]) * per_hour / 1e6,
                "events_mb_h": stored["events"] * per_hour / 1e6,
                "observations_mb_h": stored["observations"] * per_hour / 1e6, "lost": sum(obs["lost"].values()),
                "skipped": {k: v for k, v in obs["skipped"].items() if v},
                "lost_detail": {k: v for k, v in obs["lost"].items() if v}}


def _spread(values: list[float], digits: int) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="runs of each setting, alternating")
    parser.add_argument("--seconds", type=float, default=30.0, help="load window of each run")
    parser.add_argument("--actions-hz", type=float, default=1.0, help="action boundaries per second")
    parser.add_argument("--warmup-seconds", type=float, default=4.0, help="actions before each measured window")
    parser.add_argument("--drive", metavar="DISPLAY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive, args.seconds, args.actions_hz, args.warmup_seconds)
        return
    results: dict[str, list[dict[str, float]]] = {"none": [], "frames": []}
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        rig = Rig(stack, args)
        for i in range(args.rounds):
            for observe in (("none", "frames") if i % 2 == 0 else ("frames", "none")):
                r = rig.measure(observe)
                results[observe].append(r)
                print(f"  observe={observe:<6} CPU {r['cpu_pct']:.2f} %, {r['actions']} actions, {r['frames']} "
                      f"frames, frames {r['frame_mb_h']:.1f} MB/h, sent {r['sent_mb_h']:.1f} MB/h, stored "
                      f"events {r['events_mb_h']:.2f} + observations {r['observations_mb_h']:.1f} MB/h, lost "
                      f"{r['lost']} {r['lost_detail'] or ''}, skipped {r['skipped'] or 0}", flush=True)
    print(f"\ndeskcorder agent, observe = frames vs none ({os.cpu_count()} CPUs, {args.rounds} alternating runs of "
          f"{args.seconds:.0f} s at {args.actions_hz:g} action/s, {time.monotonic() - started:.0f} s; "
          f"min / median / max)")
    rows = [("CPU, % of one core", "cpu_pct", 2), ("frames encoded, MB/h", "frame_mb_h", 1),
            ("observations sent, MB/h", "sent_mb_h", 1), ("stored: observation files, MB/h", "observations_mb_h", 1),
            ("stored: event files, MB/h", "events_mb_h", 2)]
    width = max(len(r[0]) for r in rows)
    print(f"  {'':<{width}}  {'frames':>22}  {'none':>22}")
    for title, key, digits in rows:
        f, n = [r[key] for r in results["frames"]], [r[key] for r in results["none"]]
        print(f"  {title:<{width}}  {_spread(f, digits):>22}  {_spread(n, digits):>22}")
    print("  goals (issue 12): observe = frames <= 3 % of one core and <= 50 MB per hour stored")


if __name__ == "__main__":
    main()
