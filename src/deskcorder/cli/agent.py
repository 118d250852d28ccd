"""`deskcorder agent`: record this workstation's input, with consent, and upload it to a collector.

`deskcorder agent --server URL` runs the agent; `deskcorder agent pause|resume|status` talk to the
one running with the same --state-dir, through its control socket (``<state_dir>/control.sock``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

import typer

DEFAULT_PAUSE_HOTKEY = "ctrl+alt+shift+p"  # capture.DEFAULT_PAUSE_HOTKEY, repeated so --help stays fast

app = typer.Typer(add_completion=False)


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "deskcorder"


def _state_dir_option() -> Any:
    return typer.Option(_default_state_dir(), "--state-dir", help="The running agent's state directory.")


@app.callback(invoke_without_command=True)
def agent(
    ctx: typer.Context,
    server: Optional[str] = typer.Option(None, "--server", help="Collector URL, e.g. http://collector:8765."),
    state_dir: Path = typer.Option(_default_state_dir(), "--state-dir",
                                   help="Where the spool (spool.db), the device id and control.sock live."),
    enrol_token: Optional[str] = typer.Option(
        None, "--enrol-token", metavar="TOKEN", envvar="DESKCORDER_ENROL_TOKEN",
        help="One-time enrolment token from an admin (deskcorder device token): exchanged on the first start for "
             "this device's credential (STATE_DIR/credential), ignored afterwards. It binds the device to "
             "the person it was issued for."),
    pause_hotkey: str = typer.Option(DEFAULT_PAUSE_HOTKEY, "--pause-hotkey",
                                     help="Global hotkey that pauses and resumes recording; 'off' for none."),
    move_hz: float = typer.Option(60.0, "--move-hz", min=0.1,
                                  help="Most mouse moves recorded per second; the latest position of each slot is kept."),
    flush_interval: float = typer.Option(0.2, "--flush-interval", min=0.01,
                                         help="The longest an event waits in memory before it is written to the "
                                              "spool: the most input a crash can lose."),
    upload_interval: float = typer.Option(2.0, "--upload-interval", min=0.1, max=3600,
                                          help="The longest an event waits in the spool before it is uploaded "
                                               "(sooner once 1000 wait), until the collector sets its own "
                                               "(serve --agent-upload-interval)."),
    status_interval: float = typer.Option(0.5, "--status-interval", min=0.1, max=60,
                                          help="Seconds between consent checks with the collector, until it sets "
                                               "its own (serve --agent-status-interval)."),
    queue_max_events: int = typer.Option(200_000, "--queue-max-events", min=1,
                                         help="Events held in memory while the spool writer catches up; past it "
                                              "input is lost, counted (queue_full) and marked by a gap event."),
) -> None:
    """Record keyboard, mouse, scroll and active-window events until SIGINT/SIGTERM, with consent.

    The first start needs --enrol-token TOKEN (an admin issues one per device with
    `deskcorder device token --employee HANDLE`); later starts reuse the stored credential.
    Nothing is recorded until the collector confirms the employee's consent to the current policy.
    Only the applications and hours that policy allows are recorded; password prompts never are.
    A withdrawal of consent stops recording within one status interval of input (0.5 s unless the collector sets
    another); an idle desk is asked less often, and at once again when input resumes.
    Events are spooled on disk first, so a collector that is down loses nothing.
    The subcommands pause, resume and query the agent already running with that --state-dir.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..capture import Agent, AgentConfig, AgentError, CaptureUnavailable, SpoolError

    # INFO: the enrolment on a first start is news to the person, not a warning. The agent's own
    # "agent started" line is left to the echo below (one truthful first line, not two).
    logging.basicConfig(level=logging.INFO, format="deskcorder agent: %(levelname)s: %(message)s")
    logging.getLogger("deskcorder.capture.started").propagate = False
    if server is None:
        typer.echo("error: --server is required to record, e.g. deskcorder agent --server http://collector:8765",
                   err=True)
        raise typer.Exit(2)
    if not server.startswith(("http://", "https://")):
        typer.echo(f"error: --server must be an http(s) URL such as http://collector:8765, got {server!r}", err=True)
        raise typer.Exit(2)
    config = AgentConfig(server_url=server, state_dir=state_dir, move_hz=move_hz, flush_interval_s=flush_interval,
                         upload_interval_s=upload_interval, status_poll_s=status_interval,
                         queue_max_events=queue_max_events,
                         enrol_token=enrol_token or None,
                         pause_hotkey=None if pause_hotkey.strip().lower() in ("", "off", "none") else pause_hotkey)
    recorder = Agent(config)
    try:
        recorder.start()
    except (CaptureUnavailable, AgentError, SpoolError) as exc:
        typer.echo(f"error: {_word(exc)}{exc}", err=True)
        raise typer.Exit(2) from exc
    s = recorder.stats()
    # The first line says what is true now: "recording", or "not recording (<state>): why".
    typer.echo(f"deskcorder agent started: session {recorder.session_id}, device {recorder.device_id}, "
               f"server {server}: {_state(s)}" + (f" ({s['consent_detail']})" if s["recording"] else ""))
    recorder.run_until_signal()
    s = recorder.stats()
    lost = sum(s["lost"].values())
    lost_detail = ", ".join(f"{k}={v}" for k, v in s["lost"].items() if v)
    typer.echo(f"deskcorder agent stopped: session {s['session_id']}, captured {s['captured']}, "
               f"coalesced {s['coalesced']}, spooled {s['spooled']}, uploaded {s['uploaded']}, "
               f"backlog {s['backlog']}, lost {lost}{f' ({lost_detail})' if lost_detail else ''}, "
               f"dead_letter {s['dead_letter']}, state {s['state']}")
    if recorder.failure is not None:
        typer.echo(f"error: {_word(recorder.failure)}{recorder.failure}", err=True)
        raise typer.Exit(1)


def _word(error: BaseException) -> str:
    """``"revoked: "`` for an error that has a status word (the collector refusing the device), else ``""``."""
    reason = getattr(error, "reason", None)
    return f"{reason}: " if isinstance(reason, str) else ""


def _send(state_dir: Path, command: str) -> dict[str, Any]:
    from ..capture import AgentError, send_command

    try:
        return send_command(state_dir, command)
    except AgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


_WHY_NOT = {  # gate reasons that are about this desk, not about consent: said in plain words
    "out_of_scope": "the window in front is not one the recording policy allows",
    "password_prompt": "the window in front is a password prompt",
    "outside_hours": "it is outside the recording policy's working hours",
}


def _state(s: dict[str, Any]) -> str:
    """"recording", or "not recording (<state>): <why, in plain words>"."""
    reason = s.get("state") or s["gate_reason"]
    if s["recording"]:
        return "recording"
    if s["paused"] and reason == s.get("pause_reason"):
        why = "paused by you; `deskcorder agent resume` or the pause hotkey resumes"
    else:
        why = _WHY_NOT.get(reason, s["consent_detail"])
    return f"not recording ({reason}): {why}"


@app.command("pause")
def pause(state_dir: Path = _state_dir_option()) -> None:
    """Pause the running agent: nothing is recorded until `deskcorder agent resume` or the hotkey."""
    s = _send(state_dir, "pause")
    typer.echo("paused: nothing is recorded until `deskcorder agent resume`" if s["changed"] else "already paused")


@app.command("resume")
def resume(state_dir: Path = _state_dir_option()) -> None:
    """Resume the running agent after a pause (recording restarts if consent and policy allow it)."""
    s = _send(state_dir, "resume")
    typer.echo(("resumed: " if s["changed"] else "was not paused: ") + _state(s))


@app.command("status")
def status(state_dir: Path = _state_dir_option(),
           as_json: bool = typer.Option(False, "--json", help="Print every counter as one JSON object.")) -> None:
    """Show whether the running agent records now, why not, and its counters."""
    s = _send(state_dir, "status")
    if as_json:
        s.pop("ok", None)
        s.pop("command", None)
        s.pop("changed", None)
        typer.echo(json.dumps(s, default=str))
        return
    typer.echo(_state(s))
    typer.echo(f"session {s['session_id']}, device {s['device_id']}: captured {s['captured']}, "
               f"spooled {s['spooled']}, uploaded {s['uploaded']}, backlog {s['backlog']}, "
               f"lost {sum(s['lost'].values())}")
