"""Secrets in typed text: vendor tokens, named values, URL parameters, admin tools' password arguments, prose.

Each family is pinned by a few representative strings run through the whole
`Redactor`, then the look-alikes that must survive (checksums, readable
base64, placeholders, variable references, selectors, SHAs, UUIDs, versions,
paths). The last tests score the generated corpus (benchmarks/corpus/secrets.py,
fixed seed) against the targets of the issue on both splits: recall >= 99%
and look-alikes unchanged >= 97%, per category.

Token-shaped test values are generated from the vendors' formats with a
seeded RNG rather than written out, so this file holds no string a secret
scanner would flag as a real key.
"""

from __future__ import annotations

import random
import string
import time
import zlib

import pytest

from benchmarks.corpus import load
from benchmarks.corpus.secrets import VENDORS
from benchmarks.secret_detection import ours, score
from deskcorder.privacy import Redactor
from deskcorder.privacy._secret_context import secret_name
from deskcorder.privacy._secret_vendors import github_checksum_ok

RECALL_TARGET = 0.99
UNCHANGED_TARGET = 0.97
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
HEX = "0123456789abcdef"
_rng = random.Random(20261202)


def rand(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def github_token(prefix: str = "ghp_") -> str:
    body = rand(B62, 30)
    n, check = zlib.crc32(body.encode()), ""
    while n:
        n, r = divmod(n, 62)
        check = B62[r] + check
    return prefix + body + check.rjust(6, "0")


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def assert_redacted(redactor: Redactor, text: str, secret: str) -> str:
    out, counts = redactor.redact(text)
    assert secret not in out and "<SECRET>" in out, f"{secret!r} survived in {out!r}"
    assert counts.get("SECRET", 0) >= 1
    return out


# -- vendor formats ------------------------------------------------------------------------------

VENDOR_CASES = [
    (family, i, variant) for family, variants in sorted(VENDORS.items()) for i, variant in enumerate(variants)
]


@pytest.mark.parametrize(("family", "i", "variant"), VENDOR_CASES, ids=[f"{f}-{i}" for f, i, _ in VENDOR_CASES])
def test_every_vendor_format_is_redacted_in_chat_and_code(redactor, family, i, variant):
    made = variant(random.Random(f"{family}/{i}"))
    before, token, after = made if isinstance(made, tuple) else ("", made, "")
    for template in ("ok here it is {} thanks", 'client = Client("{}")'):
        text = template.format(before + token + after)
        assert_redacted(redactor, text, token)


def test_discord_bot_token_loses_all_three_parts_not_only_the_first(redactor):
    token = "MTE5NzYwMjc5Mzg5NjY1OTE4Nw." + rand(B62, 6) + "." + rand(B62 + "_-", 38)
    out = assert_redacted(redactor, f"bot.run('{token}')", token)
    assert out == "bot.run('<SECRET>')"


def test_slack_webhooks_are_redacted_over_http_as_over_https(redactor):
    path = f"T{rand(B62.upper(), 8)}/B{rand(B62.upper(), 10)}/{rand(B62, 24)}"
    for scheme in ("https", "http"):
        url = f"{scheme}://hooks.slack.com/services/{path}"
        assert redactor.redact(f"curl -X POST {url} -d @msg.json")[0] == "curl -X POST <SECRET> -d @msg.json"


def test_github_checksum_accepts_real_layout_and_finds_the_end_of_a_glued_token(redactor):
    token = github_token()
    assert github_checksum_ok(token)
    assert not github_checksum_ok(token[:-1] + ("A" if token[-1] != "A" else "B"))
    # typed straight into more text: no boundary, the checksum says where the token ends
    out, _ = redactor.redact(f"token {token}thanks")
    assert token not in out


@pytest.mark.parametrize("text", [
    "vault login hvs." + rand(B62, 24),
    "VAULT_TOKEN=hvb.AAAAAQ" + rand(B62 + "_-", 100),
    "src login --token sgp_" + rand(HEX, 40),
    "pulumi login --token pul-" + rand(HEX, 40),
    "HF_TOKEN=api_org_" + rand(string.ascii_letters, 34),
    "glab auth login --token gldt-" + rand(B62, 20),
    "grafana: glsa_" + rand(B62, 32) + "_" + rand(HEX, 8),
])
def test_vendor_formats_named_in_the_issue_are_redacted(redactor, text):
    secret = text.split()[-1].split("=")[-1]
    assert_redacted(redactor, text, secret)


# -- values behind a secret-ish name -------------------------------------------------------------

@pytest.mark.parametrize(("text", "secret"), [
    ("KEY=" + (v := rand(B62, 32)), v),
    ("FOO_KEY=" + (v := rand(HEX, 32)), v),
    ("2024-03-02 11:04:55 INFO client Key=" + (v := rand(B62, 24)) + " region=eu-west-1", v),
    ('const fooKey = "' + (v := rand(B62, 28)) + '";', v),
    ("export X_KEY=" + (v := "3f1c2a9e-4b7d-4e21-9a0c-5d8e7f6a1b2c"), v),
    ("STRIPE_SECRET=" + (v := rand(HEX, 64)), v),
    ("secret_key_base: " + (v := rand(HEX, 64)), v),
    ('<add key="PaymentApiKey" value="' + (v := rand(B62, 30)) + '" />', v),
    ("<ClientSecret>" + (v := rand(B62, 30)) + "</ClientSecret>", v),
    ('$env:DEPLOY_TOKEN = "' + (v := rand(B62, 30)) + '"', v),
    ("kubectl create secret generic app --from-literal=db-password=" + (v := "Winter2024!"), v),
    ("DB_PASSWORD=changeme", "changeme"),  # a default that is assigned is still the password
])
def test_values_behind_any_secret_name_are_redacted(redactor, text, secret):
    assert_redacted(redactor, text, secret)


@pytest.mark.parametrize(("name", "strength"), [
    ("KEY", 1), ("FOO_KEY", 1), ("fooKey", 1), ("apiKey", 2), ("API_KEY_PROD", 2), ("db-password", 2),
    ("PGPASSWORD", 2), ("auth.rootPassword", 2), ("sort_key", 0), ("public_key", 0), ("page_token", 0),
    ("max_tokens", 0), ("token_ttl", 0), ("key_id", 0), ("monkey", 0), ("keyboard", 0), ("secret_name", 0),
])
def test_names_are_judged_word_by_word(name, strength):
    assert secret_name(name) == strength


@pytest.mark.parametrize(("text", "secret"), [
    ("https://api.example.com/v2/items?key=" + (v := rand(B62, 32)) + "&page=2", v),
    ("curl 'https://files.example.com/x.csv?format=csv&token=" + (v := rand(HEX, 40)) + "'", v),
    ("https://acct.blob.core.windows.net/c/f.pdf?sv=2022-11-02&se=2024-12-31&sig=" + (v := "a%2Bb" + rand(B62, 40) + "%3D"), v),
    ("GET /oauth/cb?access_token=" + (v := rand(B62, 40)) + " HTTP/1.1", v),
])
def test_secrets_in_url_query_parameters_are_redacted(redactor, text, secret):
    assert_redacted(redactor, text, secret)


# -- admin tools and prose ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "secret"), [
    ("net user svc_backup Summer2024! /add", "Summer2024!"),
    ('sqlcmd -S db01 -U sa -P Pa55w0rd -Q "SELECT 1"', "Pa55w0rd"),
    ("ldapsearch -x -D cn=admin,dc=corp -w S3cret! -b dc=corp", "S3cret!"),
    ("smbclient //fs/share -U alice%Tr0ub4dor", "Tr0ub4dor"),
    ("xfreerdp /v:10.0.0.5 /u:admin /p:Rdp#2024", "Rdp#2024"),
    ("az login -u me@corp.example.com -p Azur3Pass", "Azur3Pass"),
    ("echo Sudo#Pass1 | sudo -S apt-get update", "Sudo#Pass1"),
    ("htpasswd -b -c /etc/nginx/.htpasswd admin H7passw!", "H7passw!"),
    ("mysql -u root -pMyS3cret shop", "MyS3cret"),
    ('psql "host=db user=app password=PgPass99 dbname=app"', "PgPass99"),
    ("curl -u admin:Adm1nPass! https://jenkins.internal/api/json", "Adm1nPass!"),
    ("sshpass -p 'Winter#2023' ssh web01", "Winter#2023"),
    ("net use \\\\fs01\\share N3tUse! /user:CORP\\jdoe", "N3tUse!"),
    ("ipmitool -I lanplus -H bmc1 -U admin -P Ipm1Pass power status", "Ipm1Pass"),
    ("sqlplus scott/T1ger99@orcl", "T1ger99"),
])
def test_password_arguments_of_admin_tools_are_redacted(redactor, text, secret):
    assert_redacted(redactor, text, secret)


@pytest.mark.parametrize(("text", "secret"), [
    ("pw: Gr33nTea!", "Gr33nTea!"),
    ("pass for nas01: Kitchen#42", "Kitchen#42"),
    ("the wifi password is Blue-Moon-77 btw", "Blue-Moon-77"),
    ("the password is changeme", "changeme"),
    ("creds: admin / R0uter!!", "R0uter!!"),
    ("PW for db01 = Falcon2024", "Falcon2024"),
])
def test_passwords_in_terse_prose_are_redacted(redactor, text, secret):
    assert_redacted(redactor, text, secret)


# -- look-alikes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "golang.org/x/net v0.17.0 h1:pVaXccu4GCQUtg8/kL4EoeC0S2uDZOpA/KJIBLCWxF0=",  # go.sum checksum
    '"integrity": "sha512-OAS3caddoPjGswYzCzl9MDMSrZ57cmFSaBcKfMXJlm4yHUj1qCifWdsv3FgAS6FJFg440Jg/BhG2529/Y+EpwA==",',
    "echo dGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZw== | base64 -d",  # base64 of prose
    "API_KEY=<your-api-key>", "SECRET_KEY=xxxxxxxxxxxxxxxx", "STRIPE_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
    "export DB_PASSWORD=${DB_PASSWORD}", "  token: ${{ secrets.NPM_TOKEN }}", "  password: {{ .Values.db.password }}",
    'curl -H "Authorization: Bearer $TOKEN" https://api.example.com', "curl -u user:<password> https://x.example",
    "const apiKey = process.env.API_KEY;", "password = getpass.getpass('Password: ')",
    "https://blog.example.com/2024/xoxo-gossip-recap-3", "thanks for everything! xoxo-Anna",
    "[self.tableView deselectRowAtIndexPath:indexPath animated:YES];", "@selector(tableView:cellForRowAtIndexPath:)",
    "git checkout 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", "ticket id 9f1c2a9e-4b7d-4e21-9a0c-5d8e7f6a1b2c",
    "upgraded to v1.26.4-rc.1+build.512", "ls /var/lib/docker/overlay2/" + "ab12" * 16 + "/merged",
    "sort_key = 'created_at'", "KEY_LENGTH = 32", "primary_key=True", "max_tokens=256", "Key: orders/2024/03/02.csv",
    "https://example.com/?key=value", "https://huggingface.co/bert-base?tokenizer=fast",
    "mysql -u root -p", "net user jdoe /delete", "curl -u alice https://api.example.com", "ssh -p 2222 web01",
    "docker login --password-stdin < pw.txt", "reset your password from the login page",
])
def test_look_alikes_survive_unchanged(redactor, text):
    assert redactor.redact(text) == (text, {})


def test_adversarial_lines_take_linear_time(redactor):
    shapes = ["password=" * 2000, "sqlcmd " + "-x " * 5000, "a/" * 8000 + "b:c", "key-" * 4000, "?key=&" * 3000,
              "x" * 20000, "net user " * 2000, "echo " + "a " * 8000 + "| sudo -S"]
    start = time.perf_counter()
    for text in shapes:
        redactor.redact(text)
    assert time.perf_counter() - start < 10.0  # quadratic backtracking on 16-20k chars would take minutes


# -- the generated corpus ---------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["dev", "heldout"])
def test_generated_corpus_meets_recall_and_look_alike_targets_per_category(split):
    samples = load(split, only=["secrets"])
    result = score(ours(), samples, strict_kind=True)
    low = {c: f"{result.rate(c):.3f}" for c in result.by_cat
           if result.rate(c) < (UNCHANGED_TARGET if c.startswith("lookalike/") else RECALL_TARGET)}
    assert not low, f"{split}: below target {low}; first misses: {result.misses[:10]}"
    assert len(result.by_cat) >= 60  # the families are all there: a generator change cannot empty the score

