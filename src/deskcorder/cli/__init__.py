"""The ``deskcorder`` command line: one thin module per command group, domain errors turned into clean messages here."""

from __future__ import annotations

import typer

from . import (agent, audit, consent, dataset, demo, device, employee, erase, export, init, policy, portal,
               retention, serve, writer)

app = typer.Typer(
    name="deskcorder",
    help="Record desktop work with consent and turn it into training datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(init.init)
app.add_typer(agent.app, name="agent")
app.command("serve")(serve.serve)
app.command("writer")(writer.writer)
app.command("demo")(demo.demo)
app.add_typer(dataset.app, name="dataset")
app.add_typer(employee.app, name="employee")
app.add_typer(device.app, name="device")
app.add_typer(consent.app, name="consent")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.command("erase")(erase.erase)
app.command("export")(export.export)
app.add_typer(retention.app, name="retention")
app.add_typer(portal.app, name="portal")


def main() -> None:
    app()
