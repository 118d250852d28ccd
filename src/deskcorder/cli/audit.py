"""`deskcorder audit list | verify`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, open_store

app = typer.Typer(help="Read and verify the hash-chained audit log.", no_args_is_help=True)


@app.command("list")
def list_(
    action: str | None = typer.Option(None, "--action", help="Only this action, e.g. events.read, erasure.complete."),
    employee: str | None = typer.Option(None, "--employee", help="Only entries about this employee (handle)."),
    limit: int = typer.Option(50, "--limit", min=1, help="Show the newest N entries."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, with hashes."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Print audit entries, oldest first: who did what, to whom (by employee_id), when, and why."""
    with open_store(data_dir, database_url) as store:
        entries = store.audit_entries(action=action, employee=employee, limit=limit)
    if not entries and not as_json:
        typer.echo("no audit entries" + (" match" if action or employee else " yet"))
    for e in entries:
        if as_json:
            typer.echo(json.dumps(e.as_json(), ensure_ascii=False))
        else:
            details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
            typer.echo(f"{e.id:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.action}  {e.target}"
                       + (f"  reason={e.reason!r}" if e.reason else "") + f"  {details}")


@app.command("verify")
def verify(
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="A head hash printed by an earlier verify and kept elsewhere: also fail "
                                    "unless that entry is still in the chain (catches a chain rewritten whole)."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Check the hash chain; exit 1 and name the first bad entry if any entry was altered, removed or moved.

    Prints the head hash: keep it somewhere the database's admins cannot write
    (a ticket, an email) and pass it to --expect-head next time.
    """
    with open_store(data_dir, database_url) as store:
        broken = store.verify_audit_chain()
        last = store.audit_entries(limit=1)
        pinned_found = expect_head is None or any(e.hash == expect_head.strip().lower()
                                                  for e in store.audit_entries())
    if broken is not None:
        intact = f"entries 1-{broken - 1} are intact" if broken > 1 else "it is the first entry"
        typer.echo(f"audit log BROKEN at entry {broken}: entry {broken} was altered, removed or moved (or the entry "
                   f"before it was); {intact}", err=True)
        raise typer.Exit(1)
    if not pinned_found:
        typer.echo(f"audit log BROKEN: no entry has the expected head hash {expect_head}; the chain was rewritten "
                   f"since that hash was taken", err=True)
        raise typer.Exit(1)
    head = f"{last[0].id} entries, head hash {last[0].hash}" if last else "empty"
    typer.echo(f"audit log intact: {head}")
