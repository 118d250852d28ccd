"""The employee's session page says what a dataset build would replace, kind by kind, as the build counts it.

Over real HTTP against a real `deskcorder serve`; the build is the real `deskcorder dataset build`, and
the page's sentence is compared with the build's own ``stats.json``.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from deskcorder.collect._portal._views import replaced_in_words
from deskcorder.store import EventStore

from .helpers import enrol, start_collector
from .test_portal_auth import log_in, portal_cli, post_events, typing_events

PASSWORD = "alice-correct-horse"
# The login (alice) is one of the identifiers every build replaces; the name has a cue ("ask").
TYPED = ("note for alice: mail anna.lindqvist@example.org, ask Maria Svensson for KEY=4lLTAjGP4Szgz90hpgBUOtUsIP25 "
         "or hvs.KcBEKanD0F0rPZkcHFuep88VxcA3iMwyAs0RqDlRtQxiDX3pCN")
TITLE = "Inbox - anna.lindqvist@example.org - Mail"


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("preview") / "data"
    with EventStore(data_dir) as store:
        enrol(store, "alice", "device-alice")
    assert portal_cli(data_dir, "set-password", "alice", password=PASSWORD).returncode == 0
    with start_collector(data_dir) as url:
        post_events(url, "batch-typed", "device-alice", typing_events("sess-typed", TYPED, "notes", "Editor"))
        post_events(url, "batch-title", "device-alice", typing_events("sess-title", "hello there", TITLE, "Mail"))
        post_events(url, "batch-plain", "device-alice", typing_events("sess-plain", "lunch at noon", "notes"))
        yield {"url": url, "data_dir": data_dir, "alice": log_in(url, "alice", PASSWORD)}


def built_redactions(data_dir: Path, session_id: str, out: Path) -> dict[str, int]:
    subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir", str(data_dir),
                    "--session", session_id, "--out", str(out)], check=True, capture_output=True, timeout=120)
    return json.loads((out / "stats.json").read_text())["redactions"]


def sentence(page: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}">(.*?)</p>', page, re.S)
    assert m, f"the page has no #{element_id}"
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1)))


def test_the_session_page_names_each_kind_replaced_with_the_counts_the_build_writes(portal, tmp_path) -> None:
    page = portal["alice"].get("/me/sessions/sess-typed")
    assert page.status_code == 200
    built = built_redactions(portal["data_dir"], "sess-typed", tmp_path / "ds")
    assert built == {"IDENTIFIER": 1, "EMAIL": 1, "NAME": 1, "SECRET": 2}  # the title "notes" adds nothing
    said = sentence(page.text, "typed-replaced")
    assert "5 replaced: 1 e-mail, 1 login or device name, 1 name, 2 secrets" in said, said
    assert replaced_in_words(built) in said
    assert page.text.count('<mark class="redacted" title=') == 5  # and each one is marked in the text


def test_window_titles_say_what_the_build_replaces_in_them(portal, tmp_path) -> None:
    page = portal["alice"].get("/me/sessions/sess-title")
    assert built_redactions(portal["data_dir"], "sess-title", tmp_path / "ds") == {"EMAIL": 1}
    assert "the window titles have 1 replaced: 1 e-mail" in sentence(page.text, "titles-replaced")
    assert "passages" not in page.text and "none here" in sentence(page.text, "typed-replaced")


def test_a_session_with_nothing_to_replace_says_none_here(portal) -> None:
    page = portal["alice"].get("/me/sessions/sess-plain").text
    assert "none here" in sentence(page, "typed-replaced") and 'id="titles-replaced"' not in page


def test_the_sentence_is_grammatical_for_one_and_for_several() -> None:
    assert replaced_in_words({}) == ""
    assert replaced_in_words({"EMAIL": 1}) == "1 replaced: 1 e-mail"
    assert replaced_in_words({"PHONE": 2, "SECRET": 1, "NAME": 3}) == "6 replaced: 3 names, 2 phone numbers, 1 secret"
    assert replaced_in_words({"IP": 2, "MAC": 1}) == "3 replaced: 2 IP addresses, 1 MAC address"
