"""`deskcorder device token|list|revoke`: enrol workstations and cut them off."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store

app = typer.Typer(help="Enrol devices (one-time tokens), list them, revoke them.", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> float:
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise fail(f"--ttl {text!r} is not a duration; write e.g. 30m, 24h or 7d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@app.command("token")
def token(
    employee: str = typer.Option(..., "--employee", help="Handle of the person whose desk will be enrolled."),
    ttl: str = typer.Option("24h", "--ttl", help="How long the token is valid: 30m, 24h, 7d (at most 30d)."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Issue a one-time enrolment token for one device of EMPLOYEE; it is printed once, never stored."""
    seconds = _seconds(ttl)
    with open_store(data_dir, database_url) as store:
        value = store.issue_enrolment_token(employee, actor=cli_actor(), ttl_s=seconds)
    typer.echo(value)
    typer.echo(f"one-time token for a device of {employee}, valid {ttl}; on that workstation run: deskcorder agent "
               f"--server URL --enrol-token TOKEN", err=True)


@app.command("list")
def list_(data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """List devices: owner, enrolment state (enrolled, revoked, not enrolled), what they uploaded and what their
    agent lost (events it could not keep, by reason; each loss is also a gap event in the stored session)."""
    with open_store(data_dir, database_url) as store:
        handles = {e.employee_id: e.handle for e in store.employees()}
        credentials = store.device_credentials()
        rows = []
        for d in store.devices():
            cred = credentials.get(d.device_id)
            state = ("not enrolled" if cred is None else
                     f"revoked {cred.revoked_at:%Y-%m-%d %H:%M}" if cred.revoked_at else "enrolled")
            rows.append((d.device_id, handles.get(d.employee_id, d.employee_id), d.hostname, state,
                         str(d.n_events), _lost(d.lost), f"{d.last_seen:%Y-%m-%d %H:%M}" if d.last_seen else "-"))
    if not rows:
        typer.echo("no devices yet; issue a token with: deskcorder device token --employee HANDLE")
        return
    header = ("device_id", "employee", "hostname", "state", "events", "lost", "last_seen")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _lost(lost: dict[str, int]) -> str:
    """``0``, or the total and its reasons as the agent's own stop line says them: ``12 (queue_full=12)``."""
    total = sum(lost.values())
    return f"{total} ({','.join(f'{k}={v}' for k, v in lost.items() if v)})" if total else "0"


@app.command("revoke")
def revoke(
    device_id: str = typer.Argument(..., help="The device to cut off (see deskcorder device list)."),
    reason: str = typer.Option(..., "--reason", help="Why (goes to the audit log), e.g. \"laptop stolen\"."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Revoke a device for good: the collector refuses its uploads (403) from now on; its stored events stay."""
    with open_store(data_dir, database_url) as store:
        cred = store.revoke_device(device_id, actor=cli_actor(), reason=reason)
    typer.echo(f"revoked {device_id} at {cred.revoked_at:%Y-%m-%d %H:%M:%S} UTC; to enrol that desk again, start "
               f"its agent with a fresh --state-dir and a new token (deskcorder device token)")
