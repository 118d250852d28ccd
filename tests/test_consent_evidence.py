"""Consent is the person's own act: an admin can only record a consent given elsewhere, with its evidence,
and every consent history (`deskcorder consent history`, the portal's /me) shows who entered each record.

Run for real: the `deskcorder` CLI against a data dir, and the portal over HTTP on a running collector.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from deskcorder.store import EventStore

from .helpers import start_collector
from .privacy_rig import clean_error, cli
from .test_consent_text import policy_toml
from .test_portal_auth import csrf_of, log_in

POLICY = policy_toml(scope="The notes app during office hours.")  # Notes, weekdays 09-17 in Paris
EVIDENCE = "signed form 2026-12-01, HR file 42"
PASSWORD = "alice-reads-her-history"


def ok(result) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def test_an_admin_records_a_consent_given_elsewhere_only_with_its_evidence(tmp_path: Path) -> None:
    data_dir, policy_file = tmp_path / "data", tmp_path / "policy.toml"
    policy_file.write_text(POLICY)
    ok(cli(data_dir, "init"))
    ok(cli(data_dir, "employee", "add", "alice"))
    ok(cli(data_dir, "policy", "set", str(policy_file)))

    refused = cli(data_dir, "consent", "give", "--employee", "alice", "--yes")
    clean_error(refused, "alice's own act", "/me", "--evidence")
    assert "never given consent" in ok(cli(data_dir, "consent", "history", "--employee", "alice"))

    declined = cli(data_dir, "consent", "give", "--employee", "alice", "--evidence", EVIDENCE, input="n\n")
    clean_error(declined, "consent not recorded")
    given = ok(cli(data_dir, "consent", "give", "--employee", "alice", "--evidence", EVIDENCE, input="y\n"))
    # The admin is shown the text the rules say, the one the person must have agreed to.
    assert "Recorded: windows of the application “Notes”." in given and "Europe/Paris time" in given
    assert f"Did alice agree to exactly this text ({EVIDENCE})?" in given
    assert re.search(rf"consent of alice for policy version 1, given elsewhere \({EVIDENCE}\), recorded by cli:\S+",
                     given), given
    ok(cli(data_dir, "consent", "withdraw", "--employee", "alice"))

    history = ok(cli(data_dir, "consent", "history", "--employee", "alice")).splitlines()
    assert re.search(rf"give\s+policy v1\s+via paper\s+entered by cli:\S+, evidence: {EVIDENCE}$", history[0])
    assert re.search(r"withdraw\s+policy v1\s+via cli\s+entered by cli:\S+$", history[1])
    with EventStore(data_dir) as store:
        gave, withdrew = store.consent_history("alice")
        entries = {e.action: e for e in store.audit_entries()}
    assert (gave.method, gave.evidence, withdrew.method, withdrew.evidence) == ("paper", EVIDENCE, "cli", None)
    assert gave.recorded_by.startswith("cli:") and gave.recorded_by == withdrew.recorded_by
    assert entries["consent.give"].details["evidence"] == EVIDENCE  # and the audit log says it too


def _history_rows(page: str) -> list[list[str]]:
    """The cells of the /me consent history table, newest first, as text."""
    table = page[page.index("<h3>History</h3>"):]
    table = table[:table.index("</table>")]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row] for row in rows if row]


def test_the_portal_history_shows_who_entered_each_consent_and_its_evidence(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        store.set_policy(POLICY, actor="cli:hr-admin")
        store.add_employee("alice", actor="cli:hr-admin")
        store.record_consent("alice", "give", policy_version=1, method="paper", actor="cli:hr-admin",
                             evidence=EVIDENCE)
        store.portal.set_password("alice", PASSWORD, role="employee", actor="cli:hr-admin")
    with start_collector(data_dir) as url:
        alice = log_in(url, "alice", PASSWORD)
        page = alice.get("/me").text
        assert [row[1:] for row in _history_rows(page)] == [  # row[0]: when
            ["gave consent", "1", f"given elsewhere (evidence: {EVIDENCE})", "cli:hr-admin"]]
        # What she agreed to is the generated text; the admin's words only as their addition.
        words = page[page.index('<ul id="consent-text">'):]
        words = html.unescape(words[:words.index("</ul>")])
        assert "Recorded: windows of the application “Notes”." in words and "Europe/Paris time" in words
        assert words.count("The notes app during office hours.") == 1 == page.count("The notes app during office")
        assert "Your admin adds, in their own words (the rules above are what is enforced): “The notes app" in words

        for action in ("withdraw", "give"):  # now her own acts, in the portal
            posted = alice.post("/me/consent", data={"csrf_token": csrf_of(alice.get("/me").text), "action": action,
                                                     "policy_version": "1"})
            assert posted.status_code == 303, posted.text
        rows = _history_rows(alice.get("/me").text)
    assert [row[1:] for row in rows] == [["gave consent", "1", "in the portal", "you"],
                                         ["withdrew consent", "1", "in the portal", "you"],
                                         ["gave consent", "1", f"given elsewhere (evidence: {EVIDENCE})",
                                          "cli:hr-admin"]]

