"""`deskcorder erase --employee HANDLE --reason TEXT`: erase a person and everything recorded of them,
or, with `--session ID` or `--day YYYY-MM-DD`, only that session or UTC day of their events."""

from __future__ import annotations

from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store


def erase(
    employee: str = typer.Option(..., "--employee", help="The employee's handle (login)."),
    reason: str = typer.Option(..., "--reason", help="Why (e.g. a ticket number). It stays in the audit log: "
                                                     "do not name the person."),
    session: str | None = typer.Option(None, "--session", help="Delete only this session of theirs (its id).",
                                       show_default=False),
    day: str | None = typer.Option(None, "--day", help="Delete only this UTC day of theirs (YYYY-MM-DD).",
                                   show_default=False),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to type the handle to confirm."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Erase an employee: destroy their key, delete their events, sessions, devices, consents and record.

    Irreversible. Safe to run again if it was interrupted. The audit log keeps
    that an erasure happened, naming the person only by an opaque id.

    With --session or --day only those events go (their key is replaced, so no
    copy of the old files opens); the person and the rest of their data stay.
    """
    from ..store import NotFound

    if not reason.strip():
        raise fail("--reason must say why (e.g. a ticket number); it goes to the audit log")
    if session is not None or day is not None:
        return _delete_part(employee, session, day, reason, yes, data_dir, database_url)
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


def _delete_part(employee: str, session: str | None, day: str | None, reason: str, yes: bool,
                 data_dir: Path, database_url: str | None) -> None:
    from ..store import InvalidInput, NotFound

    if session is not None and day is not None:
        raise fail("give --session or --day, not both: one deletion names one session or one day")
    what = f"session {session}" if session is not None else f"day {day} (UTC)"
    with open_store(data_dir, database_url) as store:
        if not yes and typer.prompt(f"This permanently deletes {what} of {employee}. Type the handle to "
                                    f"confirm") != employee:
            raise fail("the handle did not match; nothing was deleted")
        try:
            report = store.delete_events(employee, session_id=session, day=day, actor=cli_actor(), reason=reason)
        except InvalidInput as exc:
            raise fail(f"--{exc.field or 'session'}: {exc}") from exc
        except NotFound as exc:
            raise fail(f"{exc}; nothing was deleted") from exc
    typer.echo(f"deleted {what} of {employee} ({report.employee_id}): {report.events} events, "
               f"{report.sessions} sessions; their other {report.files_rewritten} files re-sealed under a new key, "
               f"so no copy of the old ones opens")
    if not report.wal_truncated:
        typer.echo("warning: the SQLite WAL could not be emptied (a reader was busy); old page copies stay in "
                   "control.db-wal until SQLite's next checkpoint", err=True)
