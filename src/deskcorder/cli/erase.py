"""`deskcorder erase --employee HANDLE --reason TEXT`: erase a person and everything recorded of them."""

from __future__ import annotations

from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store


def erase(
    employee: str = typer.Option(..., "--employee", help="The employee's handle (login)."),
    reason: str = typer.Option(..., "--reason", help="Why (e.g. a ticket number). It stays in the audit log: "
                                                     "do not name the person."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to type the handle to confirm."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Erase an employee: destroy their key, delete their events, sessions, devices, consents and record.

    Irreversible. Safe to run again if it was interrupted. The audit log keeps
    that an erasure happened, naming the person only by an opaque id.
    """
    from ..store import NotFound

    if not reason.strip():
        raise fail("--reason must say why (e.g. a ticket number); it goes to the audit log")
    with open_store(data_dir, database_url) as store:
        try:
            found = store.employee(employee)
        except NotFound as exc:
            raise fail(f"no employee {employee!r} to erase: the handle is misspelt, was never added, or was already "
                       f"erased (see: deskcorder audit list --action erasure.complete)") from exc
        resuming = found.erasure_started_at is not None
        if not yes and typer.prompt(f"This permanently erases {employee} and all their recorded data. "
                                    f"Type the handle to confirm") != employee:
            raise fail("the handle did not match; nothing was erased")
        report = store.erase_employee(employee, cli_actor(), reason)
    key = "key destroyed" if report.key_destroyed else "key already destroyed by the interrupted run"
    typer.echo(f"{'finished erasing' if resuming else 'erased'} {employee} ({found.employee_id}): {key}, "
               f"{report.files_deleted} files, {report.batches} batches, {report.sessions} sessions, "
               f"{report.devices} devices and {report.consents} consent records deleted; the audit log names "
               f"them only as employee:{found.employee_id}")
    if not report.wal_truncated:
        typer.echo("warning: the SQLite WAL could not be emptied (a reader was busy); run "
                   "`deskcorder erase` again later to finish removing old page copies", err=True)
