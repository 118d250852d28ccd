"""The README's main command: `deskcorder demo` records a scripted session and builds a clean dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deskcorder._demo import DEMO_TOKEN
from deskcorder.dataset import read_table

pytestmark = pytest.mark.x11

# What the scripted session types that must never be readable outside the agent's redaction:
# the chat is out of the policy's scope; the e-mail address and the token are redacted.
NEVER_IN_THE_DATASET = [b"ana.lopez", b"example.com", DEMO_TOKEN.encode(), b"GITHUB_TOKEN=ghp"]
NEVER_RECORDED = [b"private chat is never", b"DemoChat"]


def test_demo_records_within_scope_and_builds_a_dataset_without_secrets(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    result = subprocess.run([sys.executable, "-m", "deskcorder", "demo", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    (dataset,) = (data_dir / "datasets").iterdir()
    assert str(dataset) in result.stdout.replace("\n", "")
    actions = read_table(dataset, "actions").to_pylist()
    kinds = {a["kind"] for a in actions}
    assert kinds >= {"click", "double_click", "right_click", "drag", "scroll", "type", "hotkey", "key"}
    texts = [a["text"] for a in actions if a["kind"] == "type"]
    assert "Deskcorder records work, with consent. Mail <EMAIL> today. The end." in texts
    assert any(t.startswith("export GITHUB_TOKEN=<SECRET>") for t in texts), texts
    assert {a["app_class"] for a in actions} == {"Notes", "DemoTerm"}
    dataset_bytes = b"".join(p.read_bytes() for p in dataset.rglob("*") if p.is_file())
    assert [s for s in NEVER_IN_THE_DATASET + NEVER_RECORDED if s in dataset_bytes] == []
    # Out of scope means never written anywhere: not the agent's spool, not the store's files.
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and "datasets" not in p.parts)
    assert [s for s in NEVER_RECORDED if s in stored] == []
    # The demo agent enrolled with a one-time token, like a real desk: its credential is its own.
    assert (data_dir / "agent" / "credential").stat().st_mode & 0o777 == 0o600
