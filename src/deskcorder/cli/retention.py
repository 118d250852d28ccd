"""`deskcorder retention apply [--now ISO8601] [--dry-run]`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store

app = typer.Typer(help="Delete data older than the policy's retention_days.", no_args_is_help=True)


@app.command("apply")
def apply(
    now: str | None = typer.Option(None, "--now", help="Pretend it is this time (ISO 8601; UTC if no offset)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be deleted."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Delete whole UTC-date partitions older than the policy's retention_days, and say what went.

    A partition (one UTC date) goes once its last moment is older than
    retention_days. Each deletion is written to the audit log
    (retention.delete). The collector (deskcorder serve) runs this hourly too.
    """
    when = dt.datetime.now(dt.timezone.utc)
    if now is not None:
        try:
            when = dt.datetime.fromisoformat(now)
        except ValueError as exc:
            raise fail(f"--now {now!r} is not an ISO 8601 time, e.g. 2025-06-01T00:00:00Z") from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
    with open_store(data_dir, database_url) as store:
        deleted = store.apply_retention(when, cli_actor(), dry_run=dry_run)
        policy = store.current_policy()
    verb = "would delete" if dry_run else "deleted"
    if policy.policy is None:
        typer.echo("no policy is set, so nothing may be recorded and there is no retention limit; nothing to do")
    for d in deleted:
        typer.echo(f"{verb} {d.describe()}"
                   + ("" if dry_run else " (audited as retention.delete)"))
    if policy.policy is not None and not deleted:
        typer.echo(f"nothing older than {policy.policy.retention_days} days (retention_days of policy version "
                   f"{policy.version}) as of {when.isoformat()}")
