"""Personal data the redactor finds by context rather than by list: unlisted names, health wordings, phones.

Each case is a behaviour the generated corpus measures in bulk (benchmarks/redaction_quality.py); these
pin one example of each, and the look-alikes the same rules must leave alone.
"""

from __future__ import annotations

import pytest

from deskcorder.privacy import Redactor


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def found(redactor: Redactor, text: str) -> list[tuple[str, str]]:
    return [(text[s.start:s.end], s.kind) for s in redactor.find_spans(text)]


@pytest.mark.parametrize("text, name", [
    ("met Ayoka Iyanda at the conference", "Ayoka Iyanda"),
    ("spoke with Vibeka Ævarrsdóttir this morning", "Vibeka Ævarrsdóttir"),
    ("owner: Nomagugu Sondisa", "Nomagugu Sondisa"),
    ("Zinhle Gwacela approved the PR", "Zinhle Gwacela"),
    ("Hekima will send the slides", "Hekima"),
    ("Afaq Budaqlı | Slack", "Afaq Budaqlı"),
    ("Pərişan Dağlı (Guest) - Webex", "Pərişan Dağlı"),
    ("met Diann Ó Guithín at the conference", "Diann Ó Guithín"),
])
def test_names_in_no_list_are_found_by_the_words_around_them(redactor, text, name) -> None:
    assert found(redactor, text) == [(name, "NAME")]


@pytest.mark.parametrize("text", [
    "met Product Marketing about the launch", "Docker Desktop will restart now", "Visual Studio Code | Slack",
    "Acme Corp | Slack", "Install Docker Desktop first", "Meeting with Design Review - Calendar",
    "Defer And Stream Directives Are Used", "Generic exception when dealing with Inference Endpoints",
    "Column and Index Locations and Names", "the download from Xet Storage fails",
])
def test_capitalised_workplace_words_in_the_same_places_are_no_names(redactor, text) -> None:
    assert found(redactor, text) == []


def test_a_condition_is_redacted_with_the_word_that_says_how_it_shows(redactor) -> None:
    assert found(redactor, "off again with migraine attacks") == [("migraine attacks", "HEALTH")]
    assert found(redactor, "she has depressive episodes") == [("depressive episodes", "HEALTH")]


@pytest.mark.parametrize("text", [
    "economic depression hit the region in 1930", "the Great Depression chapter is due",
    "Breast Cancer Awareness Month starts Monday", "the diabetes foundation grant was approved",
])
def test_health_words_in_their_other_senses_stay(redactor, text) -> None:
    assert found(redactor, text) == []


def test_a_national_number_written_with_its_area_code_and_a_dash_is_a_phone_number(redactor) -> None:
    assert found(redactor, "ring 0446-503 97 after lunch") == [("0446-503 97", "PHONE")]
    assert found(redactor, "Rechnung Nr. 0815-4711") == []  # the word before says it is another number


def test_an_address_after_failed_password_for_in_a_log_is_an_ip_not_a_password(redactor) -> None:
    line = "Failed password for root from 9cbf:74eb:8ba7:59e4:1dd4:273c:a62e:9561 port 53112 ssh2"
    assert found(redactor, line) == [("9cbf:74eb:8ba7:59e4:1dd4:273c:a62e:9561", "IP")]
    assert found(redactor, "pass for nas:Xk9#mmQ2") == [("Xk9#mmQ2", "SECRET")]


def test_a_mention_of_an_unlisted_name_in_chat_is_a_name_and_an_annotation_in_code_is_not(redactor) -> None:
    assert found(redactor, "@Bekim any news?") == [("Bekim", "NAME")]
    assert found(redactor, "thanks @Adekunle, merged") == [("Adekunle", "NAME")]
    for code in ("@Override public String toString()", "@Test\nvoid parses()", "@Input() name: string",
                 "@Entity @Table(name=\"orders\")", "@Autowired private Repo repo;"):
        assert found(redactor, code) == [], code
    assert found(redactor, "public void save(@Nullable Parser parser)") == []  # inside a parameter list


def test_a_word_is_never_cut_to_find_a_name_in_it(redactor) -> None:
    assert found(redactor, "@base_url.setter") == []  # not "bas", a Dutch given name
    assert found(redactor, "@poll_interval.setter") == []


def test_irish_and_norman_apostrophe_names_are_names(redactor) -> None:
    assert found(redactor, "Siobhan O'Brien said hi") == [("Siobhan O'Brien", "NAME")]
    assert found(redactor, "Dear Mr. O'Neill,") == [("O'Neill", "NAME")]
    assert found(redactor, "don't worry, I'm fine") == []
