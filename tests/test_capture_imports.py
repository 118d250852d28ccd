"""`deskcorder agent` loads no pyarrow (nor numpy): the agent runs all day on every desk, and they would be ~38 MiB of it.

Each check runs in a fresh interpreter, since this test process has imported
everything already. The agent fills columns with Python values and sends them
as MessagePack; pyarrow is for the collector, the store and the dataset.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pyarrow", "numpy")


def _loaded_after(code: str) -> dict[str, bool]:
    """Which of HEAVY are in sys.modules once ``code`` has run (or exited) in a new interpreter."""
    probe = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}})))\n"
        f"{code}\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_agent_command_runs_without_importing_pyarrow() -> None:
    # The command as `deskcorder agent` starts it, up to its first refusal (no --server): by then it has
    # imported the CLI, the agent command and the whole capture package.
    code = ("sys.argv = ['deskcorder', 'agent']\n"
            "from deskcorder.cli import main\n"
            "main()")
    assert _loaded_after(code) == {"pyarrow": False, "numpy": False}


def test_the_modules_the_agent_imports_leave_pyarrow_unloaded() -> None:
    code = "import deskcorder, deskcorder.capture, deskcorder.cli.agent, deskcorder.events, deskcorder.wire"
    assert _loaded_after(code) == {"pyarrow": False, "numpy": False}


def test_the_arrow_schema_is_still_there_for_whoever_asks() -> None:
    code = ("import deskcorder, deskcorder.events\n"
            "assert deskcorder.EVENT_SCHEMA is deskcorder.events.EVENT_SCHEMA\n"
            "assert deskcorder.EVENT_SCHEMA.names[:2] == ['session_id', 'seq']")
    assert _loaded_after(code)["pyarrow"] is True
