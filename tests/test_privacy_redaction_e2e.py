"""Secrets of the families added in issue 10 and an e-mail, typed on a real X server, never reach a dataset.

Agent, collector and builder run as separate processes (as in test_end_to_end.py):
xdotool types each line into an xterm running ``cat`` (an allowed app that echoes and runs nothing),
the agent uploads, ``deskcorder dataset build`` writes the folder. Then every file of the folder is
searched byte for byte, and every table is decoded and searched too, including the keys of the
keystrokes table joined back into the text they typed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from deskcorder._xsession import XSession
from deskcorder.dataset import TABLES, read_table

from .helpers import enrol_in, enrolment_token, start_agent, start_collector

pytestmark = pytest.mark.x11

# (family, line typed, the values that must not survive). Values are made up in each vendor's published
# shape; every line is one the Redactor catches by the rule for that family, not by a neighbouring one.
TYPED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Vault service token", "echo hvs.KcBEKanD0F0rPZkcHFuep88VxcA3iMwyAs0RqDlRtQxiDX3pCN",
     ("hvs.KcBEKanD0F0rPZkcHFuep88VxcA3iMwyAs0RqDlRtQxiDX3pCN",)),
    ("Sourcegraph access token", "src search -token sgp_24cb433e56bdde78_4538e9555fbad701aa728ec5cf78ff25fec4dbcf",
     ("sgp_24cb433e56bdde78_4538e9555fbad701aa728ec5cf78ff25fec4dbcf", "4538e9555fbad701aa728ec5cf78ff25fec4dbcf")),
    ("Pulumi access token", "pulumi stack ls # pul-5e3d10e21b243ef4edea8eda47a16f039d792139",
     ("5e3d10e21b243ef4edea8eda47a16f039d792139",)),
    ("Hugging Face org token", "hub api_org_kQEjxMz6YmwlfLmBngRt49D3VWS0HUBCQV",
     ("kQEjxMz6YmwlfLmBngRt49D3VWS0HUBCQV",)),
    ("GitLab deploy token", "echo gldt-JnrMxhOYOanBNA3y3ZPm | glab auth login --stdin",
     ("JnrMxhOYOanBNA3y3ZPm",)),
    ("GitLab runner token", "gitlab-runner register glrt-eXBZf0dwqxDBWmOVsDSs", ("eXBZf0dwqxDBWmOVsDSs",)),
    ("Grafana cloud and service-account tokens",
     "grafana glc_GFG6qzCOvwUrE5C2ELEfSIUxZUz6Yk9MAUKeM2U1 glsa_tbLuPueVzNxsMlpktgJY07doKVe8AmKK_e0c6a6a1",
     ("GFG6qzCOvwUrE5C2ELEfSIUxZUz6Yk9MAUKeM2U1", "tbLuPueVzNxsMlpktgJY07doKVe8AmKK")),
    ("Slack webhook over http",
     "curl -d ok http://hooks.slack.com/services/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",
     ("TDCXZUKKH", "BWKBIGWFZ", "CK4wdj73CTENCUCMlw0B00v9")),
    ("Discord bot token, all three parts",
     "bot MJGDymgBPjc73lOOmKB6Y5xJy9.dMdkt9.8odLlgOKx1lt82czMWBewWmFkkzZW9D8Xv4cl1 ok",
     ("MJGDymgBPjc73lOOmKB6Y5xJy9", "dMdkt9", "8odLlgOKx1lt82czMWBewWmFkkzZW9D8Xv4cl1")),
    ("generic KEY=", "KEY=4lLTAjGP4Szgz90hpgBUOtUsIP25", ("4lLTAjGP4Szgz90hpgBUOtUsIP25",)),
    ("URL ?token=", "wget https://api.example.net/feed?token=3bf7905c73f3c69b2602c10da51baf50&n=5",
     ("3bf7905c73f3c69b2602c10da51baf50",)),
    ("sqlcmd -P", "sqlcmd -S db01 -U sa -P Wint3r!gejgh -Q 'select 1'", ("Wint3r!gejgh",)),
    ("ldapsearch -w", "ldapsearch -x -D cn=admin -w Sommar#2024kq -b dc=corp", ("Sommar#2024kq",)),
    ("net user NAME PASS", "net user svc-backup Pl4ntain!rq /add", ("Pl4ntain!rq",)),
    ("e-mail address", "mail anna.lindqvist@example.org the numbers", ("anna.lindqvist@example.org",)),
)
# What the lines keep: the dataset holds the typing, only the secrets are gone.
KEPT = ("src search -token", "gitlab-runner register", "sqlcmd -S db01 -U sa -P", "net user svc-backup", "the numbers")


def _type_every_line(tmp_path: Path, data_dir: Path, url: str) -> None:
    with XSession() as xs:
        term = xs.open_window(["xterm", "-class", "E2ETerm", "-title", "e2e terminal",
                               "-geometry", "150x30+50+50", "-e", "cat"], "E2ETerm")
        xs.activate(term)
        token = enrolment_token(data_dir, "e2e-redaction")
        with start_agent(url, tmp_path / "agent", xs.env, "--enrol-token", token) as agent:
            time.sleep(0.5)  # on a loaded machine the recording context can attach late
            for _, line, _ in TYPED:
                xs.xdotool("type", "--delay", "10", line)
                xs.xdotool("key", "Return")
            time.sleep(0.5)
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=20) == 0


def _typed_back_from_keystrokes(out: Path) -> list[str]:
    """The text each action's key presses spell (masked keys are null and spell nothing)."""
    keys: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in read_table(out, "keystrokes").select(["action_id", "position", "key"]).to_pylist():
        if row["key"] is not None and len(row["key"]) == 1:
            keys[row["action_id"]].append((row["position"], row["key"]))
    return ["".join(k for _, k in sorted(presses)) for presses in keys.values()]


def test_secrets_of_each_new_family_and_an_email_typed_in_a_terminal_are_in_no_dataset_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "e2e-redaction")
    with start_collector(data_dir) as url:
        _type_every_line(tmp_path, data_dir, url)

    out = tmp_path / "dataset"
    subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir", str(data_dir),
                    "--out", str(out)], check=True, capture_output=True)

    texts = [t for t in read_table(out, "actions").column("text").to_pylist() if t]
    typed = "\n".join(texts)
    assert all(kept in typed for kept in KEPT), texts  # the typing arrived; this is not an empty dataset
    assert typed.count("<SECRET>") >= len(TYPED) - 1 and "<EMAIL>" in typed, texts

    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".jsonl" for p in files)
    decoded = [str(read_table(out, table).to_pylist()) for table in TABLES] + _typed_back_from_keystrokes(out)
    for family, _, values in TYPED:
        for value in values:
            for path in files:
                assert value.encode() not in path.read_bytes(), f"{family}: {value!r} is in {path.relative_to(out)}"
            assert not any(value in text for text in decoded), f"{family}: {value!r} is in a decoded table"
