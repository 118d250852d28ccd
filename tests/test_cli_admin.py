"""The admin commands, run for real (`python -m deskcorder ...` against a temp data dir): what they print,
what they change (checked by reopening the store or the files), and that every mistake is one clean
`error: ...` line with exit status 2 and no traceback.

Commands that do not depend on each other run side by side (``run_all``) to keep the file fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deskcorder.cli import app
from deskcorder.store import EventStore, NotFound

from .helpers import READ
from .privacy_rig import DEVICES, OKAPI, TYPED, ZEBRA, clean_error, cli, policy, populate, typed_text

ADMIN_COMMANDS = [("employee", "add"), ("employee", "list"), ("consent", "give"), ("consent", "withdraw"),
                  ("consent", "history"), ("policy", "set"), ("policy", "show"), ("audit", "list"),
                  ("audit", "verify"), ("erase",), ("export",), ("retention", "apply")]


def run_all(data_dir: Path, *commands: tuple[str, ...] | tuple[tuple[str, ...], str]
            ) -> list[subprocess.CompletedProcess]:
    """Run several `deskcorder` commands at once; each is ARGS, or (ARGS, STDIN)."""
    procs = []
    for command in commands:
        args, stdin = (command[0], command[1]) if isinstance(command[0], tuple) else (command, None)
        proc = subprocess.Popen([sys.executable, "-m", "deskcorder", *args, "--data-dir", str(data_dir)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append((proc, args, stdin))
    results = []
    for proc, args, stdin in procs:
        out, err = proc.communicate(stdin, timeout=120)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        populate(store, days=1, portal=False)
    return data_dir


def test_every_admin_command_has_help_that_says_what_it_does() -> None:
    runner = CliRunner()
    for path in ADMIN_COMMANDS:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "--data-dir" in result.output and len(result.output.split()) > 20, path
    assert "Irreversible" in runner.invoke(app, ["erase", "--help"]).output
    assert "--expect-head" in runner.invoke(app, ["audit", "verify", "--help"]).output
    assert "--dry-run" in runner.invoke(app, ["retention", "apply", "--help"]).output


def test_an_admin_sets_up_people_policy_and_consent(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert "created a deskcorder store" in ok(cli(data_dir, "init"))  # the one command that creates a store
    assert "exists" in ok(cli(data_dir, "init"))  # and again: nothing changes
    added = ok(cli(data_dir, "employee", "add", ZEBRA, "--name", "Zebra Frogsworth"))
    assert re.match(rf"added {ZEBRA} \(emp_[0-9a-f]+\)", added)
    (policy_file := tmp_path / "policy.toml").write_text(policy(days=14))
    (bad_file := tmp_path / "bad.toml").write_text("version = 2\nretention_days = 0\n")
    again, bad_handle, show_none, okapi, invalid, missing = run_all(
        data_dir, ("employee", "add", ZEBRA), ("employee", "add", "bad handle!"), ("policy", "show"),
        ("employee", "add", OKAPI), ("policy", "set", str(bad_file)), ("policy", "set", str(tmp_path / "nope.toml")))
    clean_error(again, "already exists")
    clean_error(bad_handle, "handle", "letters, digits")
    assert "no policy is set" in ok(show_none)
    ok(okapi)
    clean_error(invalid, "invalid policy", "retention_days")
    clean_error(missing, "cannot read", "nope.toml")
    assert "policy version 1 is now current" in ok(cli(data_dir, "policy", "set", str(policy_file), "--note",
                                                       "first scope"))
    stale, shown, okapi_declines, zebra_gives, okapi_gives, ghost = run_all(
        data_dir, ("policy", "set", str(policy_file)), ("policy", "show"),
        (("consent", "give", "--employee", OKAPI, "--evidence", "form 1"), "n\n"),
        (("consent", "give", "--employee", ZEBRA, "--evidence", "form 2"), "y\n"),
        ("consent", "give", "--employee", OKAPI, "--evidence", "form 3", "--yes"),
        ("consent", "give", "--employee", "ghost", "--evidence", "form 4", "--yes"))
    clean_error(stale, "not newer", "version = 2")
    assert "retention_days = 14" in ok(shown) and "# version 1" in shown.stdout and "first scope" in shown.stdout
    clean_error(okapi_declines, "consent not recorded")
    asked = ok(zebra_gives)
    assert "Privacy tests: every application." in asked and "Kept for 14 days" in asked
    assert f"consent of {ZEBRA} for policy version 1, given elsewhere (form 2), recorded by cli:" in asked
    ok(okapi_gives)
    clean_error(ghost, "no employee 'ghost'")
    assert f"consent of {OKAPI} withdrawn" in ok(cli(data_dir, "consent", "withdraw", "--employee", OKAPI))

    okapi_history, zebra_history, listing = run_all(
        data_dir, ("consent", "history", "--employee", OKAPI), ("consent", "history", "--employee", ZEBRA),
        ("employee", "list"))
    assert re.findall(r"(give|withdraw)\s+policy v1\s+via (paper|cli)", ok(okapi_history)) == [
        ("give", "paper"), ("withdraw", "cli")]
    assert "consent in force: no" in okapi_history.stdout
    assert "consent in force: yes" in ok(zebra_history)
    rows = {line.split()[0]: line for line in ok(listing).splitlines()[1:]}
    assert "Zebra Frogsworth" in rows[ZEBRA] and "give v1" in rows[ZEBRA] and "withdraw v1" in rows[OKAPI]

    with EventStore(data_dir) as store:
        assert [c.action for c in store.consent_history(OKAPI)] == ["give", "withdraw"]
        assert store.current_policy().note == "first scope"
        actions = [(e.action, e.actor) for e in store.audit_entries()]
    assert actions[0][1].startswith("cli:")  # the operating-system user who ran the command
    assert sorted(a for a, _ in actions) == sorted(["employee.add", "employee.add", "policy.set", "consent.give",
                                                    "consent.give", "consent.withdraw"])


def test_audit_list_and_verify_and_tampering_found_by_verify(populated: Path, tmp_path: Path) -> None:
    everything, consents, about, verified = run_all(
        populated, ("audit", "list"), ("audit", "list", "--action", "consent.give", "--json"),
        ("audit", "list", "--employee", ZEBRA, "--limit", "2"), ("audit", "verify"))
    assert re.search(r"^\s+1  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  tests  policy\.set  policy:v1", ok(everything), re.M)
    as_json = [json.loads(line) for line in ok(consents).splitlines()]
    assert [e["action"] for e in as_json] == ["consent.give", "consent.give"]
    assert all(len(e["hash"]) == 64 and e["target"].startswith("employee:emp_") for e in as_json)
    assert len(ok(about).splitlines()) == 2
    head = re.fullmatch(r"audit log intact: (\d+) entries, head hash ([0-9a-f]{64})\n", ok(verified))
    assert head, verified.stdout
    for trace in (ZEBRA, *DEVICES[ZEBRA]):
        assert trace not in everything.stdout  # people appear as employee:<id>, devices as hashes

    def tampered(sql: str) -> Path:
        copy = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(populated, copy)
        with contextlib.closing(sqlite3.connect(copy / "control.db")) as conn, conn:
            conn.executescript(sql)
        return copy

    copies = [tampered("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 3"),
              tampered("DELETE FROM audit_log WHERE id = 5"),
              tampered("UPDATE audit_log SET id = -id WHERE id IN (2, 4); "
                       "UPDATE audit_log SET id = CASE id WHEN -2 THEN 4 ELSE 2 END WHERE id IN (-2, -4)"),
              tampered(f"DELETE FROM audit_log WHERE id = {head.group(1)}")]
    procs = [subprocess.Popen([sys.executable, "-m", "deskcorder", "audit", "verify", "--data-dir", str(c)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in copies]
    for proc, bad_entry in zip(procs, ["3", "5", "2", head.group(1)]):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, (out, err)
        assert f"audit log BROKEN at entry {bad_entry}:" in err and "Traceback" not in err
    pinned = cli(populated, "audit", "verify", "--expect-head", head.group(2))
    assert "audit log intact" in ok(pinned)


def test_export_writes_the_archive_and_erase_removes_the_person(populated: Path, tmp_path: Path) -> None:
    out = tmp_path / "zebra.zip"
    exported, ghost, no_folder, mismatch, no_reason = run_all(
        populated, ("export", "--employee", ZEBRA, "--out", str(out)),
        ("export", "--employee", "ghost", "--out", str(tmp_path / "g.zip")),
        ("export", "--employee", ZEBRA, "--out", str(tmp_path / "missing" / "z.zip")),
        (("erase", "--employee", OKAPI, "--reason", "ticket 9"), "okapi-typo\n"),
        ("erase", "--employee", OKAPI, "--reason", " ", "--yes"))
    assert f"wrote {out}" in ok(exported) and "README.txt" in exported.stdout
    with zipfile.ZipFile(out) as zf:
        assert TYPED[ZEBRA] in zf.read("events.jsonl").decode() and "README.txt" in zf.namelist()
    clean_error(ghost, "no employee 'ghost'", "nothing to export")
    clean_error(no_folder, "does not exist")
    clean_error(mismatch, "did not match", "nothing was erased")
    clean_error(no_reason, "--reason")
    assert not (tmp_path / "g.zip").exists()

    erased = ok(cli(populated, "erase", "--employee", ZEBRA, "--reason", "ticket 10", "--yes"))
    assert re.match(rf"erased {ZEBRA} \(emp_[0-9a-f]+\): key destroyed, 2 files, 2 batches, 2 sessions, 2 devices "
                    rf"and 1 consent records deleted", erased), erased
    again, export_gone, listing, audit = run_all(
        populated, ("erase", "--employee", ZEBRA, "--reason", "ticket 10", "--yes"),
        ("export", "--employee", ZEBRA, "--out", str(tmp_path / "z2.zip")), ("employee", "list"),
        ("audit", "list", "--action", "erasure.complete"))
    clean_error(again, "already erased")
    clean_error(export_gone, "nothing to export")
    assert ZEBRA not in ok(listing) and OKAPI in listing.stdout
    assert "erasure.complete" in ok(audit) and ZEBRA not in audit.stdout and "ticket 10" in audit.stdout
    with EventStore(populated) as store:
        with pytest.raises(NotFound):
            store.employee(ZEBRA)
        assert typed_text(store.read_events(**READ)) == TYPED[OKAPI]


def test_retention_apply_lists_deletes_and_logs(populated: Path) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    later = (today + dt.timedelta(days=2)).isoformat() + "T00:00:00Z"
    dry, garbage, too_soon = run_all(populated, ("retention", "apply", "--now", later, "--dry-run"),
                                     ("retention", "apply", "--now", "next tuesday"), ("retention", "apply"))
    assert ok(dry).strip() == f"would delete date={today}: 3 files, 60 events, 3 sessions"
    clean_error(garbage, "--now", "ISO 8601")
    assert "nothing older than 1 days" in ok(too_soon)
    assert len(list((populated / "events").rglob("*.parquet"))) == 3
    done = ok(cli(populated, "retention", "apply", "--now", later))
    assert done.strip() == f"deleted date={today}: 3 files, 60 events, 3 sessions (audited as retention.delete)"
    assert list((populated / "events").rglob("*.parquet")) == []
    logged = ok(cli(populated, "audit", "list", "--action", "retention.delete", "--json"))
    (entry,) = [json.loads(line) for line in logged.splitlines()]
    assert entry["actor"].startswith("cli:") and entry["details"]["events"] == 60
    assert entry["details"]["as_of"].startswith(later[:10])


def test_every_admin_command_refuses_a_data_dir_without_data(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    (tmp_path / "p.toml").write_text(policy())
    results = run_all(empty, ("employee", "list"), ("audit", "verify"), ("employee", "add", ZEBRA),
                      ("policy", "set", str(tmp_path / "p.toml")), ("portal", "add-admin", "ops", "--password-stdin"),
                      ("erase", "--employee", ZEBRA, "--reason", "r", "--yes"),
                      ("export", "--employee", ZEBRA, "--out", str(tmp_path / "z.zip")))
    for result in results:
        clean_error(result, "no deskcorder store at", str(empty), f"deskcorder init --data-dir {empty}")
    assert not empty.exists()  # a mistyped --data-dir creates nothing
    assert not empty.exists()
