"""`deskcorder consent give|withdraw|history --employee HANDLE`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..policy import consent_text
from ..store import ConsentRecord
from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store

app = typer.Typer(help="Give or withdraw an employee's consent to being recorded, and show its history.",
                  no_args_is_help=True)

EMPLOYEE = typer.Option(..., "--employee", help="The employee's handle (login).")


@app.command("give")
def give(
    employee: str = EMPLOYEE,
    evidence: str = typer.Option(
        "", "--evidence", help="What shows the employee agreed elsewhere, e.g. \"signed form 2026-12-01, HR file "
        "42\". Required: this command records a consent given elsewhere, never gives it."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to confirm that the employee agreed to this text."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Record a consent the employee gave elsewhere (a signed form), with its evidence.

    Consent is the person's own act: they give it in the portal, at /me, with their
    own login. This command is for an admin entering a consent given on paper: it
    prints the text the employee must have agreed to (generated from the rules the
    agents enforce), and records it as given elsewhere (method "paper"), with the
    evidence and the admin who entered it; `deskcorder consent history` shows both.
    """
    evidence = evidence.strip()
    if not evidence:
        raise fail(f"consent is {employee}'s own act: they can give it in the portal at /me. To record a consent "
                   f"they gave elsewhere, say what shows it: deskcorder consent give --employee {employee} "
                   f"--evidence \"signed form 2026-12-01\"")
    with open_store(data_dir, database_url) as store:
        store.employee(employee)  # an unknown handle fails before anything is shown
        policy = store.current_policy()
        if policy.policy is None:
            raise fail("there is no recording policy to consent to yet; an admin sets one with: "
                       "deskcorder policy set FILE")
        typer.echo(consent_text(policy.policy, policy.version))
        if not yes and not typer.confirm(f"Did {employee} agree to exactly this text ({evidence})?", default=False):
            raise fail("consent not recorded")
        record = store.record_consent(employee, "give", policy_version=policy.version, method="paper",
                                      actor=cli_actor(), evidence=evidence)
    typer.echo(f"consent of {employee} for policy version {record.policy_version}, given elsewhere "
               f"({record.evidence}), recorded by {record.recorded_by} at {record.recorded_at:%Y-%m-%d %H:%M:%S} UTC")


@app.command("withdraw")
def withdraw(employee: str = EMPLOYEE, data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """Withdraw consent: recording on their devices stops at the agents' next status poll (within a second; on
    a fleet within its --agent-status-interval, 10 s by default), and nothing stamped later is ever stored."""
    with open_store(data_dir, database_url) as store:
        record = store.record_consent(employee, "withdraw", policy_version=None, method="cli", actor=cli_actor())
    typer.echo(f"consent of {employee} withdrawn at {record.recorded_at:%Y-%m-%d %H:%M:%S} UTC (entered by "
               f"{record.recorded_by}); events recorded after that are refused by the collector")


@app.command("history")
def history_(employee: str = EMPLOYEE, data_dir: Path = DATA_DIR, database_url: str | None = DATABASE_URL) -> None:
    """Print the employee's consent history, oldest first, and whether they may be recorded now."""
    with open_store(data_dir, database_url) as store:
        history = store.consent_history(employee)
        policy = store.current_policy()
    if not history:
        typer.echo(f"{employee} has never given consent")
    for c in history:
        typer.echo(f"{c.recorded_at:%Y-%m-%d %H:%M:%S} UTC  {c.action:<8}  policy v{c.policy_version}  via {c.method}"
                   f"  {_entered(c)}")
    latest = history[-1] if history else None
    current = latest is not None and latest.action == "give" and latest.policy_version == policy.version
    typer.echo(f"current policy: version {policy.version}; consent in force: {'yes' if current else 'no'}")


def _entered(record: ConsentRecord) -> str:
    """Who entered a consent record, and the evidence of one given elsewhere."""
    who = f"entered by {record.recorded_by}" if record.recorded_by else "entered by an unrecorded actor"
    return f"{who}, evidence: {record.evidence}" if record.evidence else who
