"""What the capture agent costs a workstation under sustained heavy input: CPU, memory, throughput.

    python benchmarks/agent_cpu.py [--seconds 10] [--keys-hz 200] [--moves-hz 500]

Starts a private X server (Xvfb + openbox), a `deskcorder serve` collector
with an enrolled device, and `deskcorder agent` as it runs in production.
A separate driver process injects input through XTest at fixed rates: key
presses (each a press and a release) and absolute pointer moves, paced on an
absolute schedule. The agent's CPU is its process CPU time (user + system,
psutil) over the driven window divided by wall time, as % of one core; the
driver, Xvfb and the collector are measured the same way so their work is not
mistaken for the agent's. Counters come from the agent's stop line.

RECORD delivery: the X server hands recorded input to the agent when it
flushes output to its clients, or when its RECORD buffer fills (about 32
events). On a desktop, apps that listen to the pointer make it flush all the
time; in Xvfb with nothing listening, injected moves would reach the agent in
bursts every ~32 events, all stamped at arrival, and coalescing would keep
about one move per burst. So by default the driver waits for a reply after
every injected event (one RECORD reply per event: the agent's worst case);
``--batched-record`` shows the bursty delivery instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import psutil

HANDLE = "bench-person"
DEVICE_ID = "bench-agent-device"
ALLOW_ALL_POLICY = """\
version = 1
scope_text = "Benchmark: every application, any time."
retention_days = 30

[[apps]]
title_include = [".*"]
"""


# -- the input driver (runs in its own process: ``--drive``) ---------------------------------

def drive(display_name: str, seconds: float, keys_hz: float, moves_hz: float, batched: bool) -> None:
    """Inject keys and moves at fixed rates for ``seconds``; print what was sent as JSON."""
    import resource

    import Xlib.display
    import Xlib.X
    import Xlib.XK
    from Xlib.ext import xtest

    display = Xlib.display.Display(display_name)
    # Letters only: no Enter or modifiers, so the focused app does no work beyond receiving keys.
    keycodes = [display.keysym_to_keycode(Xlib.XK.string_to_keysym(c)) for c in "abcdefghijklmnopqrstuvwxyz"]
    print("ready", flush=True)
    key_period = 1.0 / keys_hz if keys_hz > 0 else float("inf")  # a rate of 0 turns that input off
    move_period = 1.0 / moves_hz if moves_hz > 0 else float("inf")
    start = time.monotonic()
    end = start + seconds
    next_key = start if keys_hz > 0 else float("inf")
    next_move = start if moves_hz > 0 else float("inf")
    keys = moves = late = 0
    while True:
        due = min(next_key, next_move)
        if due >= end:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.005:
            late += 1
        if next_key <= next_move:
            code = keycodes[keys % len(keycodes)]
            xtest.fake_input(display, Xlib.X.KeyPress, code)
            xtest.fake_input(display, Xlib.X.KeyRelease, code)
            keys += 1
            next_key = start + keys * key_period  # absolute schedule: no drift from sleep overshoot
        else:
            # A 300x200 ellipse traced in ~1 s, so every move lands on a new pixel.
            x = 600 + int(300 * math.cos(math.tau * moves / 500))
            y = 400 + int(200 * math.sin(math.tau * moves / 500))
            xtest.fake_input(display, Xlib.X.MotionNotify, x=x, y=y)
            moves += 1
            next_move = start + moves * move_period
        if batched:
            display.flush()
        else:
            display.sync()  # a reply to this client makes the server flush its RECORD buffer too
    display.sync()
    took = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    display.close()
    print(json.dumps({"keys": keys, "moves": moves, "seconds": took, "late": late,
                      "cpu_s": usage.ru_utime + usage.ru_stime}), flush=True)


# -- the rig ---------------------------------------------------------------------------------

def enrol(data_dir: Path) -> str:
    """An employee, a policy allowing every app and their consent; returns the one-time token that enrols
    this device (the agent exchanges it on start, as in production)."""
    from deskcorder.store import EventStore

    with EventStore(data_dir) as store:
        store.set_policy(ALLOW_ALL_POLICY, actor="benchmark")
        store.add_employee(HANDLE, actor="benchmark")
        store.record_consent(HANDLE, "give", policy_version=store.current_policy().version, method="api",
                             actor="benchmark")
        return store.issue_enrolment_token(HANDLE, actor="benchmark")


@contextlib.contextmanager
def collector(data_dir: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "deskcorder", "serve", "--data-dir", str(data_dir), "--port", "0",
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not url and (m := re.search(r"listening on (http://\S+)", line)):
                url.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(30) or not url:
            raise SystemExit("the collector did not start")
        yield proc, url[0]
    finally:
        _terminate(proc)


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _backlog(state_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{state_dir / 'spool.db'}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute("SELECT coalesce(sum(n_events), 0) FROM chunks").fetchone()[0]


class Sampler(threading.Thread):
    """Peak RSS and thread count of a process, sampled every 100 ms."""

    def __init__(self, proc: psutil.Process):
        super().__init__(daemon=True)
        self.proc, self.peak_rss, self.threads = proc, 0, 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
                self.threads = max(self.threads, self.proc.num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keys-hz", type=float, default=200.0, help="key presses per second (press + release)")
    parser.add_argument("--moves-hz", type=float, default=500.0, help="pointer moves per second")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="agent idle time measured first")
    parser.add_argument("--batched-record", action="store_true",
                        help="let the X server batch recorded input (~32 events per RECORD reply) instead of "
                             "flushing after every injected event; see the module docstring")
    parser.add_argument("--drive", metavar="DISPLAY", help=argparse.SUPPRESS)  # the driver process
    args = parser.parse_args()
    if args.drive:
        drive(args.drive, args.seconds, args.keys_hz, args.moves_hz, args.batched_record)
        return

    from deskcorder._xsession import XSession

    tmp = Path(tempfile.mkdtemp(prefix="deskcorder-agent-cpu-"))
    data_dir, state_dir = tmp / "data", tmp / "agent"
    state_dir.mkdir(parents=True)
    (state_dir / "device_id").write_text(DEVICE_ID + "\n")
    token = enrol(data_dir)
    with XSession() as xs, collector(data_dir) as (collector_proc, url):
        # The focused app discards input without drawing it: the benchmark measures the agent, not xterm.
        window = xs.open_window(["xterm", "-class", "BenchSink", "-geometry", "160x50+0+0", "-e", "sh", "-c",
                                 "stty -echo; cat >/dev/null"], "BenchSink")
        xs.activate(window)
        log = tmp / "agent.log"
        extra = ["--enrol-token", token]
        with open(log, "w") as out:
            agent = subprocess.Popen([sys.executable, "-m", "deskcorder", "agent", "--server", url,
                                      "--state-dir", str(state_dir), *extra],
                                     stdout=out, stderr=subprocess.STDOUT, env={**xs.env, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 30
            while "session" not in log.read_text():
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the agent did not start:\n{log.read_text()}")
                time.sleep(0.05)
            time.sleep(1.0)  # RECORD attaches, start-up work settles
            agent_ps = psutil.Process(agent.pid)
            collector_ps = psutil.Process(collector_proc.pid)
            xvfb_ps = next(p for p in psutil.Process().children() if p.name() == "Xvfb")

            idle_cpu0, idle_t0 = _cpu_s(agent_ps), time.monotonic()
            time.sleep(args.idle_seconds)
            idle_pct = 100 * (_cpu_s(agent_ps) - idle_cpu0) / (time.monotonic() - idle_t0)
            rss_before = agent_ps.memory_info().rss

            driver = subprocess.Popen([sys.executable, __file__, "--drive", xs.display or "", "--seconds",
                                       str(args.seconds), "--keys-hz", str(args.keys_hz), "--moves-hz",
                                       str(args.moves_hz), *(["--batched-record"] if args.batched_record else [])],
                                      stdout=subprocess.PIPE, text=True, env=xs.env)
            assert driver.stdout is not None
            if driver.stdout.readline().strip() != "ready":
                raise SystemExit("the input driver did not start")
            sampler = Sampler(agent_ps)
            sampler.start()
            before = {name: _cpu_s(p) for name, p in
                      (("agent", agent_ps), ("collector", collector_ps), ("xvfb", xvfb_ps))}
            t0 = time.monotonic()
            sent = json.loads(driver.stdout.readline())
            driver.wait()
            # The agent's own work on the last input (a flush, an upload) ends within its intervals.
            time.sleep(0.7)
            wall = time.monotonic() - t0
            after = {name: _cpu_s(p) for name, p in
                     (("agent", agent_ps), ("collector", collector_ps), ("xvfb", xvfb_ps))}
            sampler.halt.set()
            sampler.join()
            rss_after = agent_ps.memory_info().rss

            drain_t0 = time.monotonic()
            while _backlog(state_dir) and time.monotonic() - drain_t0 < 30:
                time.sleep(0.05)
            drain_s = time.monotonic() - drain_t0
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
        finally:
            _terminate(agent)
        output = log.read_text()
    line = next((ln for ln in output.splitlines() if "agent stopped" in ln), "")
    counters = {k: int(v) for k, v in re.findall(r"(captured|coalesced|spooled|uploaded|backlog|lost) (\d+)", line)}
    from deskcorder.store import EventStore

    with EventStore(data_dir) as store:
        stored = sum(d.n_events for d in store.devices())

    pct = {name: 100 * (after[name] - before[name]) / wall for name in before}
    driver_pct = 100 * sent["cpu_s"] / sent["seconds"]
    drive_s = sent["seconds"]
    rows: list[tuple[str, Any]] = [
        ("input driven", f"{drive_s:.1f} s: {sent['keys'] / drive_s:.0f} keys/s (press+release), "
                         f"{sent['moves'] / drive_s:.0f} moves/s; {sent['late']} sends >5 ms late"),
        ("agent CPU, driven", f"{pct['agent']:.1f} % of one core (over {wall:.1f} s wall)"),
        ("agent CPU, idle", f"{idle_pct:.2f} % of one core (over {args.idle_seconds:.0f} s; the kernel counts "
                            f"CPU in {100 / os.sysconf('SC_CLK_TCK') / args.idle_seconds:.2f} % steps here)"),
        ("driver CPU (not the agent)", f"{driver_pct:.1f} % of one core"),
        ("Xvfb CPU (not the agent)", f"{pct['xvfb']:.1f} % of one core"),
        ("collector CPU (not the agent)", f"{pct['collector']:.1f} % of one core"),
        ("events captured", f"{counters.get('captured', 0)} = {counters.get('captured', 0) / drive_s:.0f}/s "
                            f"(injected {2 * sent['keys'] + sent['moves']})"),
        ("moves coalesced (move_hz 60)", f"{counters.get('coalesced', 0)} = "
                                         f"{counters.get('coalesced', 0) / drive_s:.0f}/s"),
        ("events spooled", f"{counters.get('spooled', 0)} = {counters.get('spooled', 0) / drive_s:.0f}/s"),
        ("events uploaded", f"{counters.get('uploaded', 0)}; backlog at stop {counters.get('backlog', '?')}, "
                            f"drained {drain_s:.2f} s after input stopped"),
        ("events in the store", f"{stored}"),
        ("events lost", f"{counters.get('lost', '?')}"),
        ("agent RSS", f"{rss_before / 2**20:.1f} MiB before, {rss_after / 2**20:.1f} MiB after, "
                      f"peak {sampler.peak_rss / 2**20:.1f} MiB; {sampler.threads} threads"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\ndeskcorder agent under sustained input ({os.cpu_count()} CPUs, {sys.platform})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if not line:
        print(f"\nthe agent printed no stop line; its output:\n{output}")


if __name__ == "__main__":
    main()
