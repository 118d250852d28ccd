"""The README's main command: `deskcorder demo` records a scripted session and builds a clean dataset."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from deskcorder._apps import GTK_FORM_CLASS
from deskcorder._demo import DEMO_FORM_NAME, DEMO_PASSWORD, DEMO_TOKEN, have_gtk_form
from deskcorder.dataset import read_table

pytestmark = pytest.mark.x11

# What the scripted session types that must never be readable outside the agent's redaction:
# the chat is out of the policy's scope; the e-mail address and the token are redacted.
NEVER_IN_THE_DATASET = [b"ana.lopez", b"example.com", DEMO_TOKEN.encode(), b"GITHUB_TOKEN=ghp",
                        DEMO_PASSWORD.encode(), DEMO_FORM_NAME.encode()]
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
    gtk = have_gtk_form()
    assert {a["app_class"] for a in actions} == {"Notes", "DemoTerm"} | ({GTK_FORM_CLASS} if gtk else set())
    dataset_bytes = b"".join(p.read_bytes() for p in dataset.rglob("*") if p.is_file())
    assert [s for s in NEVER_IN_THE_DATASET + NEVER_RECORDED if s in dataset_bytes] == []
    # Out of scope means never written anywhere: not the agent's spool, not the store's files.
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and "datasets" not in p.parts)
    assert [s for s in NEVER_RECORDED if s in stored] == []
    # Observations: frames at the actions (any desk), elements under the clicks (the GTK form, over AT-SPI).
    observed = json.loads((dataset / "stats.json").read_text())["observations"]
    printed = re.search(r"observations: (\d+) frames and (\d+) UI elements reached the dataset; (\d+) regions masked",
                        result.stdout.replace("\n", " "))
    assert printed is not None, result.stdout
    assert [int(n) for n in printed.groups()] == [observed["frames"], observed["elements"], observed["masked_regions"]]
    assert observed["frames"] > 0
    rows = read_table(dataset, "observations").to_pylist()
    steps = [json.loads(line) for path in (dataset / "trajectories").glob("*.jsonl") for line in path.open()]
    assert any(step["image"] for episode in steps for step in episode["traj"])
    if not gtk:
        assert "no GTK form" in result.stdout
        return
    assert observed["elements"] > 0
    assert any((r["element_role"], r["element_name"]) == ("push button", "Submit") for r in rows)
    # The click on the password field: the field has no name, and its box is black in the stored frame.
    (password,) = [r for r in rows if r["element_protected"]]
    assert password["element_role"] == "password text" and password["element_name"] is None
    frame = Image.open(dataset / password["frame"]).convert("RGB")
    sx, sy = password["frame_width"], password["frame_height"]
    box = (round(password["element_x"] * sx) + 1, round(password["element_y"] * sy) + 1,
           round((password["element_x"] + password["element_width"]) * sx) - 1,
           round((password["element_y"] + password["element_height"]) * sy) - 1)
    assert frame.crop(box).getextrema() == ((0, 0), (0, 0), (0, 0)), box
    # The demo agent enrolled with a one-time token, like a real desk: its credential is its own.
    assert (data_dir / "agent" / "credential").stat().st_mode & 0o777 == 0o600
