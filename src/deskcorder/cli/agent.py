"""`deskcorder agent`: record this workstation's input and upload it to a collector."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "deskcorder"


def agent(
    server: str = typer.Option(..., "--server", help="Collector URL, e.g. http://collector:8765."),
    state_dir: Path = typer.Option(_default_state_dir(), "--state-dir",
                                   help="Where the spool (spool.db) and the device id live."),
    move_hz: float = typer.Option(60.0, "--move-hz", min=0.1,
                                  help="Most mouse moves recorded per second; the latest position of each slot is kept."),
    flush_interval: float = typer.Option(0.2, "--flush-interval", min=0.01,
                                         help="Seconds between spool writes: the most input a crash can lose."),
) -> None:
    """Record keyboard, mouse, scroll and active-window events until SIGINT/SIGTERM.

    Prints one status line when recording starts and a stats line when it stops.
    Events are spooled on disk first, so a collector that is down loses nothing.
    """
    from ..capture import Agent, AgentConfig, AgentError, CaptureUnavailable, SpoolError

    logging.basicConfig(level=logging.WARNING, format="deskcorder agent: %(levelname)s: %(message)s")
    if not server.startswith(("http://", "https://")):
        typer.echo(f"error: --server must be an http(s) URL such as http://collector:8765, got {server!r}", err=True)
        raise typer.Exit(2)
    config = AgentConfig(server_url=server, state_dir=state_dir, move_hz=move_hz, flush_interval_s=flush_interval)
    recorder = Agent(config)
    try:
        recorder.start()
    except (CaptureUnavailable, AgentError, SpoolError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"deskcorder agent recording: session {recorder.session_id}, device {recorder.device_id}, "
               f"server {server}")
    recorder.run_until_signal()
    s = recorder.stats()
    lost = sum(s["lost"].values())
    lost_detail = ", ".join(f"{k}={v}" for k, v in s["lost"].items() if v)
    typer.echo(f"deskcorder agent stopped: session {s['session_id']}, captured {s['captured']}, "
               f"coalesced {s['coalesced']}, spooled {s['spooled']}, uploaded {s['uploaded']}, "
               f"backlog {s['backlog']}, lost {lost}{f' ({lost_detail})' if lost_detail else ''}, "
               f"dead_letter {s['dead_letter']}")
    if recorder.failure is not None:
        typer.echo(f"error: {recorder.failure}", err=True)
        raise typer.Exit(1)
