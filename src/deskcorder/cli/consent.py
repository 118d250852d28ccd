"""`deskcorder consent give|withdraw|history --employee HANDLE`."""

from __future__ import annotations

from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store

app = typer.Typer(help="Give or withdraw an employee's consent to being recorded, and show its history.",
                  no_args_is_help=True)

EMPLOYEE = typer.Option(..., "--employee", help="The employee's handle (login).")


@app.command("give")
def give(
    employee: str = EMPLOYEE,
    yes: bool = typer.Option(False, "--yes", help="Do not ask; for when the employee agreed elsewhere."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Show the current policy's scope to the employee and record their consent to it.

    Meant to be run by the employee at their own terminal: it prints what will be
    recorded and asks them to agree.
    """
    with open_store(data_dir, database_url) as store:
        store.employee(employee)  # an unknown handle fails before anything is shown
        policy = store.current_policy()
        if policy.policy is None:
            raise fail("there is no recording policy to consent to yet; an admin sets one with: "
                       "deskcorder policy set FILE")
        typer.echo(f"Recording policy version {policy.version}:")
        typer.echo(f"  {policy.policy.scope_text or '(no scope text; see the policy below)'}")
        typer.echo(f"  Applications: {', '.join(r.wm_class or r.process or '/'.join(r.title_include) for r in policy.policy.apps) or 'none'}")
        typer.echo(f"  Data is kept for {policy.policy.retention_days} days, then deleted.")
        if not yes and not typer.confirm(f"Do you, {employee}, agree to be recorded as described?", default=False):
            raise fail("consent not given; nothing was recorded")
        record = store.record_consent(employee, "give", policy_version=policy.version, method="cli",
                                      actor=cli_actor())
    typer.echo(f"consent given by {employee} for policy version {record.policy_version} at "
               f"{record.recorded_at:%Y-%m-%d %H:%M:%S} UTC")


@app.command("withdraw")
def withdraw(employee: str = EMPLOYEE, data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """Withdraw consent: recording on their devices stops at the agents' next status poll (within a second; on
    a fleet within its --agent-status-interval, 10 s by default), and nothing stamped later is ever stored."""
    with open_store(data_dir, database_url) as store:
        record = store.record_consent(employee, "withdraw", policy_version=None, method="cli", actor=cli_actor())
    typer.echo(f"consent withdrawn by {employee} at {record.recorded_at:%Y-%m-%d %H:%M:%S} UTC; events recorded "
               f"after that are refused by the collector")


@app.command("history")
def history_(employee: str = EMPLOYEE, data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """Print the employee's consent history, oldest first, and whether they may be recorded now."""
    with open_store(data_dir, database_url) as store:
        history = store.consent_history(employee)
        policy = store.current_policy()
    if not history:
        typer.echo(f"{employee} has never given consent")
    for c in history:
        typer.echo(f"{c.recorded_at:%Y-%m-%d %H:%M:%S} UTC  {c.action:<8}  policy v{c.policy_version}  via {c.method}")
    latest = history[-1] if history else None
    current = latest is not None and latest.action == "give" and latest.policy_version == policy.version
    typer.echo(f"current policy: version {policy.version}; consent in force: {'yes' if current else 'no'}")
