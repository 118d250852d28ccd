"""`DESKCORDER_DATA_DIR` is every admin command's default data dir, and it is no way around `deskcorder init`:
a mistyped one fails, naming the path and the fix, and creates nothing. Run for real, as `python -m deskcorder`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def deskcorder(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    """A command with no --data-dir: the store comes from the environment."""
    env = {**os.environ, "DESKCORDER_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "deskcorder", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=data_dir.parent)


def test_the_environment_names_the_store_and_a_mistyped_one_creates_nothing(tmp_path: Path) -> None:
    store, typo = tmp_path / "srv-deskcorder", tmp_path / "srv-deskcorer"
    assert "created a deskcorder store" in deskcorder("init", data_dir=store).stdout
    added = deskcorder("employee", "add", "alice", data_dir=store)
    assert added.returncode == 0, added.stderr
    listed = deskcorder("employee", "list", data_dir=store)
    assert listed.returncode == 0 and "alice" in listed.stdout
    assert not (tmp_path / "deskcorder-data").exists()  # the built-in default was not used

    mistyped = deskcorder("employee", "add", "bob", data_dir=typo)
    assert mistyped.returncode == 2 and "Traceback" not in mistyped.stderr
    assert f"no deskcorder store at {typo}" in mistyped.stderr and "DESKCORDER_DATA_DIR" in mistyped.stderr
    assert f"deskcorder init --data-dir {typo}" in mistyped.stderr
    assert not typo.exists()
