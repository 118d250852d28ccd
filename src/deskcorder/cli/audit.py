"""`deskcorder audit show | verify`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, open_store

app = typer.Typer(help="Read and verify the hash-chained audit log.", no_args_is_help=True)


@app.command("show")
def show(
    action: str | None = typer.Option(None, "--action", help="Only this action, e.g. events.read, erasure.complete."),
    employee: str | None = typer.Option(None, "--employee", help="Only entries about this employee (handle)."),
    limit: int = typer.Option(50, "--limit", min=1, help="Show the newest N entries."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, with hashes."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Print audit entries, oldest first."""
    with open_store(data_dir, database_url) as store:
        entries = store.audit_entries(action=action, employee=employee, limit=limit)
    for e in entries:
        if as_json:
            typer.echo(json.dumps(e.as_json(), ensure_ascii=False))
        else:
            details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
            typer.echo(f"{e.id:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.action}  {e.target}"
                       + (f"  reason={e.reason!r}" if e.reason else "") + f"  {details}")


@app.command("verify")
def verify(data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """Check the hash chain; exit 1 and name the first bad row if any row was altered or removed."""
    with open_store(data_dir, database_url) as store:
        broken = store.verify_audit_chain()
        last = store.audit_entries(limit=1)
    if broken is not None:
        typer.echo(f"audit log BROKEN at entry {broken}: it was altered or removed (or one before it was)", err=True)
        raise typer.Exit(1)
    head = f"{last[0].id} entries, head hash {last[0].hash}" if last else "empty"
    typer.echo(f"audit log intact: {head}")
