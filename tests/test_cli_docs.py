"""The CLI and its docs agree: every command has help text and appears in the README."""

from __future__ import annotations

from pathlib import Path

import click
import typer.main
from typer.testing import CliRunner

from deskcorder.cli import app

README = (Path(__file__).parent.parent / "README.md").read_text()


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_there_are_commands_to_check() -> None:
    assert {path[0] for path, _ in COMMANDS} >= {"agent", "serve", "demo", "dataset"}


def test_every_command_has_help_and_is_in_the_readme() -> None:
    runner = CliRunner()
    for path, command in COMMANDS:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert (command.help or "").strip() and "Not built yet" not in command.help, f"{path} has no help"
        if not isinstance(command, click.Group):
            assert f"deskcorder {' '.join(path)}" in README, f"`deskcorder {' '.join(path)}` is not in the README"
