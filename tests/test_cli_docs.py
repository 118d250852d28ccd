"""The CLI and its docs agree: every command has help text that fits 80 columns and appears in the README, and
the README's deployment example runs as written."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
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


def _option_names(command: click.Command) -> list[str]:
    return [name for p in command.params if isinstance(p, click.Option) and not p.hidden
            for name in (*p.opts, *p.secondary_opts) if name.startswith("--")]


def test_every_help_fits_80_columns_and_shows_every_option_name_whole() -> None:
    runner = CliRunner(env={"COLUMNS": "80"})
    for path, command in [((), typer.main.get_command(app)), *COMMANDS]:
        output = runner.invoke(app, [*path, "--help"]).output
        too_wide = [line for line in output.splitlines() if len(line) > 80]
        assert not too_wide, (path, too_wide)
        for name in _option_names(command):
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", output), (path, name, output)
    # The agent's own entry point (`deskcorder agent ...` skips building the whole app) helps the same way.
    env = {**os.environ, "COLUMNS": "80"}
    shown = subprocess.run([sys.executable, "-m", "deskcorder", "agent", "--help"], capture_output=True, text=True,
                           env=env, timeout=60).stdout
    assert "╭" not in shown and "--enrol-token" in shown and max(map(len, shown.splitlines())) <= 80
    shown = subprocess.run([sys.executable, "-m", "deskcorder", "serve", "--help"], capture_output=True, text=True,
                           env=env, timeout=60).stdout
    assert "--agent-upload-interval" in shown and "…" not in shown


def _readme_block(after: str) -> str:
    """The first ```bash block after the sentence ``after``."""
    start = README.index("```bash\n", README.index(after)) + len("```bash\n")
    return README[start:README.index("```\n", start)]


def test_the_readme_says_what_to_type_after_set_up() -> None:
    block = _readme_block("Then, in the same shell")
    assert block.splitlines()[0] == "source .venv/bin/activate"
    assert (Path(__file__).parent.parent / "scripts" / "demo").read_text().count(".venv") >= 1


def _run_block(block: str, cwd: Path, env: dict[str, str]) -> str:
    """Run a README block in bash (stopping at the first failing command); what it printed."""
    # Output to files, not pipes: a server the block leaves running in the background keeps them open.
    out, err = cwd / "stdout", cwd / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        ran = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block], cwd=cwd, env=env, stdout=stdout,
                             stderr=stderr, timeout=300, stdin=subprocess.DEVNULL, start_new_session=True)
    assert ran.returncode == 0, (block, out.read_text(), err.read_text())
    return out.read_text()


def test_the_readme_deployment_runs_as_written(tmp_path: Path) -> None:
    """The collector machine's block, with only the data dir and the port changed, in a shell with the venv
    on PATH: no prompt stops it, its server answers, and the token it prints enrols alice's device, which
    uploads what an agent would; then the build block makes a dataset of it."""
    from deskcorder.collect._device_auth import bearer
    from deskcorder.events import events_to_columns
    from deskcorder.store import EventStore

    from .test_portal_auth import typing_events

    setup = _readme_block("A minimal deployment by hand")
    assert "cat > policy.toml" in setup and "--yes" in setup and "deskcorder agent" not in setup
    agent = _readme_block("On alice's workstation")
    assert agent.startswith("deskcorder agent --server http://collector:8765 --enrol-token dcet_")
    build = _readme_block("Once it has recorded")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tmp_path / "srv"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DESKCORDER_DATA_DIR", None)
    printed = _run_block(setup.replace("/srv/deskcorder", str(data_dir)).replace("--port 8765", f"--port {port}")
                         + 'echo "server pid $!"\n', tmp_path, env)
    server = re.search(r"server pid (\d+)", printed)
    assert server, printed
    try:
        token = re.search(r"\bdcet_\S+", printed)
        assert token, printed
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(f"{url}/v1/devices/enrol", json={"token": token.group(0), "device_id": "alice-desk-01",
                                                         "hostname": "alice-desk"}, timeout=10)
        assert r.status_code == 200, r.text
        events = typing_events("alice-session-1", "hello from the terminal", "alice@desk: ~", app="XTerm")
        r = httpx.post(f"{url}/v1/batches", json={"v": 1, "batch_id": "alice-batch-0001", "device_id": "alice-desk-01",
                                                  "events": events_to_columns(events)},
                       headers=bearer("alice-desk-01", r.json()["secret"]), timeout=10)
        assert r.status_code == 200, r.text
        _run_block(build, tmp_path, {**env, "DESKCORDER_DATA_DIR": str(data_dir)})
        assert json.loads((tmp_path / "datasets" / "2026-11" / "stats.json").read_text())["persons"] == 1
        with EventStore(data_dir, create=False) as store:
            assert store.current_policy().version == 1
            assert [c.action for c in store.consent_history("alice")] == ["give"]
    finally:
        os.kill(int(server.group(1)), signal.SIGTERM)
