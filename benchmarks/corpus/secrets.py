"""Secrets for the generated corpus: vendor tokens, named values, URL parameters, CLI passwords, prose, look-alikes.

Values are made from the vendors' published formats (prefix, length,
alphabet, and the CRC32 checksum GitHub and npm put in their tokens), never
copied from a rule set, then placed into typed contexts: shell, env files,
YAML, JSON, code in several languages, SQL, chat, log lines, URLs.

The two splits differ in more than the draw. Every list the generator picks
from (context templates, vendor variants, key-name stems and suffixes,
name casing, CLI tools, prose phrasings, value shapes) is cut in two by
`halves`; dev sees one half, held-out the other. A few families and
look-alikes exist only in the held-out split (``HELDOUT_ONLY``), so the
held-out score also covers formats no rule was tuned on.

Decisions the labels encode (the detectors follow them):

- A default password that is *assigned* (``password=changeme``) is a
  password: defaults stay in use. A placeholder (``<your-token>``, ``xxxx``,
  ``****``, ``YOUR_API_KEY``) or a reference (``${DB_PASS}``, ``$TOKEN``,
  ``{{ .Values.key }}``, ``process.env.KEY``) is not.
- A composite token (Discord bot token, Slack webhook URL, Azure connection
  string's key) is one span: redacting half of it leaks the rest.
"""

from __future__ import annotations

import base64
import random
import string
import uuid
import zlib
from collections.abc import Callable, Iterator

from . import Sample, halves, place

__all__ = ["generate"]

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase  # the order GitHub's base62 uses
HEX = "0123456789abcdef"
B64 = string.ascii_letters + string.digits + "+/"
B64URL = string.ascii_letters + string.digits + "-_"
PER_FAMILY = 36  # samples per vendor family and split
PER_GENERIC = 160  # samples per generic category (named values, URL parameters, CLI, prose) and split
PER_LOOKALIKE = 120

Rng = random.Random
Token = Callable[[Rng], "str | tuple[str, str, str]"]  # the token, or (text before, token, text after)


def _s(rng: Rng, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b62_checksum(body: str) -> str:
    """GitHub/npm token checksum: CRC32 of the random part in base62, left-padded to 6 characters."""
    n, out = zlib.crc32(body.encode()), ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(6, "0")


def _checksummed(prefix: str) -> Token:
    def make(rng: Rng) -> str:
        body = _s(rng, B62, 30)
        return prefix + body + _b62_checksum(body)
    return make


def _fixed(prefix: str, alphabet: str, n: int, suffix: str = "") -> Token:
    return lambda rng: prefix + _s(rng, alphabet, n) + suffix


def _b64_bytes(rng: Rng, n: int, *, url: bool = False) -> str:
    raw = bytes(rng.randrange(256) for _ in range(n))
    return (base64.urlsafe_b64encode(raw).decode().rstrip("=") if url else base64.b64encode(raw).decode())


def _jwt(rng: Rng) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    claims = f'{{"sub":"{rng.randrange(10**6)}","iat":{rng.randrange(1_600_000_000, 1_800_000_000)}}}'
    payload = base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=")
    return f"{header}.{payload}.{_b64_bytes(rng, 32, url=True)}"


def _discord_bot(rng: Rng) -> str:
    user_id = str(rng.randrange(10**17, 10**19)).encode()
    first = base64.b64encode(user_id).decode().rstrip("=")
    return f"{first}.{_s(rng, B64URL, 6)}.{_s(rng, B64URL, 38)}"


def _grafana_cloud(rng: Rng) -> str:
    blob = f'{{"o":"{rng.randrange(10**6)}","n":"stack-{rng.randrange(999)}-hm-read","k":"{_s(rng, B62, 24)}",' \
           f'"m":{{"r":"prod-us-east-0"}}}}'
    return "glc_" + base64.b64encode(blob.encode()).decode().rstrip("=")


def _azure_conn(rng: Rng) -> tuple[str, str, str]:
    # Only the key is a secret: the account name and endpoint around it are kept.
    return (f"DefaultEndpointsProtocol=https;AccountName=st{_s(rng, string.ascii_lowercase, 8)};AccountKey=",
            _b64_bytes(rng, 64), ";EndpointSuffix=core.windows.net")


def _private_key(kind: str, width: int = 64) -> Token:
    def make(rng: Rng) -> str:
        body = _b64_bytes(rng, rng.randrange(180, 400))
        lines = [body[i:i + width] for i in range(0, len(body), width)]
        return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"
    return make


def _age_key(rng: Rng) -> str:
    return "AGE-SECRET-KEY-1" + _s(rng, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)


# -- vendor families: category -> variants (split between dev and held-out where there are two or more)

VENDORS: dict[str, list[Token]] = {
    "github": [_checksummed("ghp_"), _checksummed("gho_"), _checksummed("ghu_"), _checksummed("ghs_"),
               _checksummed("ghr_"), lambda r: "github_pat_" + _s(r, B62, 22) + "_" + _s(r, B62, 59)],
    "gitlab": [_fixed("glpat-", B64URL, 20), _fixed("gldt-", B64URL, 20), _fixed("glrt-", B64URL, 20),
               _fixed("glcbt-", B64URL, 20), _fixed("glptt-", HEX, 40), _fixed("gloas-", HEX, 64),
               _fixed("glsoat-", B64URL, 20), _fixed("glffct-", B64URL, 20), _fixed("GR1348941", B64URL, 20),
               _fixed("glimt-", B62, 25), _fixed("glagent-", B64URL, 50)],
    "slack-token": [lambda r: f"xoxb-{r.randrange(10**11, 10**12)}-{r.randrange(10**12, 10**13)}-{_s(r, B62, 24)}",
                    lambda r: f"xoxp-{r.randrange(10**11, 10**12)}-{r.randrange(10**11, 10**12)}-"
                              f"{r.randrange(10**12, 10**13)}-{_s(r, HEX, 32)}",
                    lambda r: f"xapp-1-A{_s(r, string.ascii_uppercase + string.digits, 10)}-"
                              f"{r.randrange(10**12, 10**13)}-{_s(r, HEX, 64)}",
                    lambda r: f"xoxe.xoxp-1-{_s(r, B62, 140)}", lambda r: f"xoxa-2-{_s(r, B62, 40)}"],
    "slack-webhook": [lambda r: f"https://hooks.slack.com/services/T{_s(r, B62.upper(), 8)}/B{_s(r, B62.upper(), 10)}/"
                                f"{_s(r, B62, 24)}",
                      lambda r: f"http://hooks.slack.com/services/T{_s(r, B62.upper(), 10)}/B{_s(r, B62.upper(), 8)}/"
                                f"{_s(r, B62, 24)}",
                      lambda r: f"https://hooks.slack.com/workflows/T{_s(r, B62.upper(), 8)}/A{_s(r, B62.upper(), 10)}/"
                                f"{r.randrange(10**17, 10**18)}/{_s(r, B62, 24)}"],
    "discord": [_discord_bot,
                lambda r: f"https://discord.com/api/webhooks/{r.randrange(10**17, 10**19)}/{_s(r, B64URL, 68)}",
                lambda r: f"https://discordapp.com/api/webhooks/{r.randrange(10**17, 10**19)}/{_s(r, B64URL, 68)}"],
    "stripe": [_fixed("sk_live_", B62, 99), _fixed("rk_live_", B62, 99), _fixed("sk_test_", B62, 24),
               _fixed("whsec_", B62, 32), _fixed("rk_test_", B62, 99)],
    "twilio": [_fixed("SK", HEX, 32), lambda r: f"AC{_s(r, HEX, 32)}:{_s(r, HEX, 32)}"],
    "sendgrid": [lambda r: f"SG.{_s(r, B64URL, 22)}.{_s(r, B64URL, 43)}"],
    "npm": [_checksummed("npm_")],
    "pypi": [lambda r: "pypi-AgEIcHlwaS5vcmc" + _s(r, B64URL, 120), lambda r: "pypi-AgENdGVzdC5weXBpLm9yZw" + _s(r, B64URL, 90)],
    "doppler": [_fixed("dp.pt.", B62, 43), _fixed("dp.st.", B62, 43), _fixed("dp.sa.", B62, 43),
                _fixed("dp.ct.", B62, 43), lambda r: f"dp.st.dev.{_s(r, B62, 40)}"],
    "shopify": [_fixed("shpat_", HEX, 32), _fixed("shpss_", HEX, 32), _fixed("shpca_", HEX, 32), _fixed("shppa_", HEX, 32)],
    "databricks": [_fixed("dapi", HEX, 32), lambda r: f"dapi{_s(r, HEX, 32)}-2"],
    "digitalocean": [_fixed("dop_v1_", HEX, 64), _fixed("doo_v1_", HEX, 64), _fixed("dor_v1_", HEX, 64)],
    "linear": [_fixed("lin_api_", B62, 40), _fixed("lin_oauth_", HEX, 64)],
    "notion": [_fixed("secret_", B62, 43), lambda r: f"ntn_{_s(r, string.digits, 11)}{_s(r, B62, 35)}"],
    "atlassian": [lambda r: f"ATATT3xFfGF0{_s(r, B64URL, 180)}={_s(r, HEX.upper(), 8)}",
                  lambda r: f"ATCTT3xFfGN0{_s(r, B64URL, 180)}={_s(r, HEX.upper(), 8)}"],
    "vault": [_fixed("hvs.", B62, 24), lambda r: "hvs.CAESI" + _s(r, B64URL, 90), lambda r: "hvb.AAAAAQ" + _s(r, B64URL, 120),
              _fixed("hvr.", B62, 24), _fixed("s.", B62, 24)],
    "sourcegraph": [_fixed("sgp_", HEX, 40), lambda r: f"sgp_{_s(r, HEX, 16)}_{_s(r, HEX, 40)}",
                    lambda r: f"sgp_local_{_s(r, HEX, 40)}"],
    "pulumi": [_fixed("pul-", HEX, 40)],
    "huggingface": [_fixed("hf_", string.ascii_letters, 34), _fixed("api_org_", string.ascii_letters, 34)],
    "grafana": [_grafana_cloud, lambda r: f"glsa_{_s(r, B62, 32)}_{_s(r, HEX, 8)}"],
    "openai": [lambda r: "sk-proj-" + _s(r, B64URL, 156), lambda r: "sk-" + _s(r, B62, 20) + "T3BlbkFJ" + _s(r, B62, 20),
               lambda r: "sk-svcacct-" + _s(r, B64URL, 120), lambda r: "sk-admin-" + _s(r, B64URL, 120)],
    "anthropic": [lambda r: f"sk-ant-api03-{_s(r, B64URL, 93)}AA", lambda r: f"sk-ant-admin01-{_s(r, B64URL, 93)}AA"],
    "google": [_fixed("AIza", B64URL, 35), lambda r: "ya29.a0" + _s(r, B64URL, 150),
               lambda r: f"GOCSPX-{_s(r, B64URL, 28)}"],
    "aws": [_fixed("AKIA", string.ascii_uppercase + "234567", 16), _fixed("ASIA", string.ascii_uppercase + "234567", 16)],
    "jwt": [_jwt],
    "azure": [_azure_conn,
              lambda r: f"{_s(r, B62, 52)}JQQJ9{r.choice('9DH')}{r.choice(B62)}{r.choice('ABCDEFGHIJKL')}{_s(r, B62, 16)}",
              lambda r: f"{_s(r, B62, 3)}8Q~{_s(r, B64URL + '.~', 34)}"],
    "mailgun": [_fixed("key-", HEX, 32)],
    "postman": [lambda r: f"PMAK-{_s(r, HEX, 24)}-{_s(r, HEX, 34)}"],
    "newrelic": [_fixed("NRAK-", string.ascii_uppercase + string.digits, 27), _fixed("NRII-", B64URL, 32)],
    "heroku": [_fixed("HRKU-AA", B64URL, 58)],
    "telegram": [lambda r: f"{r.randrange(10**8, 10**10)}:AA{_s(r, B64URL, 33)}"],
    "square": [_fixed("EAAA", B64URL, 60), _fixed("sq0atp-", B64URL, 22), _fixed("sq0csp-", B64URL, 43)],
    "mailchimp": [lambda r: f"{_s(r, HEX, 32)}-us{r.randrange(1, 21)}"],
    "private-key": [_private_key("RSA PRIVATE KEY"), _private_key("OPENSSH PRIVATE KEY", 70), _private_key("PRIVATE KEY"),
                    _private_key("EC PRIVATE KEY"), _private_key("PGP PRIVATE KEY BLOCK"),
                    _private_key("ENCRYPTED PRIVATE KEY"), _age_key],
    "1password": [lambda r: "ops_eyJ" + _s(r, B64URL, 200)],
    "planetscale": [_fixed("pscale_tkn_", B64URL, 43), _fixed("pscale_pw_", B64URL, 43)],
    "supabase": [_fixed("sbp_", HEX, 40)],
    "tailscale": [lambda r: f"tskey-auth-k{_s(r, B62, 16)}-{_s(r, B62, 32)}",
                  lambda r: f"tskey-api-k{_s(r, B62, 16)}-{_s(r, B62, 32)}"],
    "figma": [lambda r: f"figd_{_s(r, B64URL, 40)}"],
    "flyio": [lambda r: "fo1_" + _s(r, B64URL, 43), lambda r: "FlyV1 fm2_" + _s(r, B64, 200)],
    "dynatrace": [lambda r: f"dt0c01.{_s(r, string.ascii_uppercase + string.digits, 24)}.{_s(r, string.ascii_uppercase + string.digits, 64)}"],
}
# Families the detectors were not tuned on at all: only the held-out split has them.
HELDOUT_ONLY: dict[str, list[Token]] = {
    "clojars": [_fixed("CLOJARS_", HEX, 60)],
    "frameio": [_fixed("fio-u-", B64URL, 64)],
    "prefect": [_fixed("pnu_", B62, 36)],
    "readme": [_fixed("rdme_", HEX, 70)],
    "scalingo": [_fixed("tk-us-", B64URL, 48)],
}

# Contexts a token is typed or pasted in; the token sits where {} is. Names around it are neutral
# on purpose (the vendor rule must carry the family, not the assignment rule).
VENDOR_CONTEXTS = [
    ("chat", "here you go: {}"),
    ("shell", "gh secret set DEPLOY --body {}"),
    ("json", '{{"id": 7, "value": "{}"}}'),
    ("chat", "{}"),
    ("python", 'client = Client("{}")'),
    ("shell", 'curl -H "Authorization: Bearer {}" https://api.example.com/v1/me'),
    ("js", "const client = new Client('{}');"),
    ("log-line", "2024-05-01T10:22:01Z DEBUG upload using {} for bucket assets"),
    ("sql", "INSERT INTO integrations (id, cred) VALUES (42, '{}');"),
    ("chat", "can you check why {} gets a 401 from prod?"),
    ("yaml", "  - {}"),
    ("shell", "echo {} | docker secret create upload -"),
    ("toml", 'value = "{}"'),
    ("chat", "new one is {} (old one revoked)"),
    ("python", "run(['deploy', '--env', 'prod', '{}'])"),
    ("markdown", "> {}"),
]


def _vendor_samples(rng: Rng, split: str) -> Iterator[Sample]:
    contexts = halves(VENDOR_CONTEXTS, split)
    families = dict(VENDORS, **(HELDOUT_ONLY if split == "heldout" else {}))
    for family, variants in families.items():
        mine = halves(variants, split) if len(variants) >= 2 else variants
        for _ in range(PER_FAMILY):
            made = rng.choice(mine)(rng)
            before, token, after = made if isinstance(made, tuple) else ("", made, "")
            context, template = rng.choice(contexts)
            if "\n" in token and context not in ("chat", "markdown"):
                context, template = ("shell", "cat > key <<'EOF'\n{}\nEOF") if split == "dev" else ("chat", "{}")
            template = template.replace("{}", before + "{}" + after)
            yield place(template, [(token, "SECRET")], category=f"secret/vendor/{family}", context=context)


# -- values behind a secret-ish name ------------------------------------------------------------

# Not "cache" or "s3": a cache_key or an s3_key is a lookup key or an object path, not a secret.
NAME_STEMS = ["stripe", "db", "foo", "github", "app", "upload", "sentry", "payment", "mail", "internal", "jira",
              "search", "minio", "admin", "partner", "billing", "crm", "vault", "auth0", "maps", "analytics", "ci"]
NAME_SUFFIXES = ["key", "token", "secret", "api_key", "password", "access_key", "client_secret", "pass", "auth_token",
                 "secret_key", "pwd", "apikey", "private_key", "signing_key", "webhook_secret", "credentials",
                 "master_key", "access_token", "passphrase", "hmac_key", "refresh_token", "session_secret"]
BARE_NAMES = ["KEY", "Key", "key", "TOKEN", "SECRET", "PASSWORD", "Token", "Secret", "PASS", "Password", "API_KEY",
              "apiKey"]


def _case(rng: Rng, stem: str, suffix: str, style: str) -> str:
    words = [w for w in (stem + "_" + suffix).split("_") if w]
    if style == "upper":
        return "_".join(words).upper()
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "snake":
        return "_".join(words)
    if style == "kebab":
        return "-".join(words)
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    return ".".join(words)  # dotted (properties files)


CASE_STYLES = ["upper", "camel", "snake", "pascal", "kebab", "dotted"]
# (context, template with {name} and {}); a value never contains quotes, so any quoting works.
NAMED_CONTEXTS = [
    ("env-file", "{name}={}"),
    ("shell", "export {name}={}"),
    ("yaml", "{name}: {}"),
    ("json", '"{name}": "{}",'),
    ("python", '{name} = "{}"'),
    ("js", 'const {name} = "{}";'),
    ("log-line", "2024-03-02 11:04:55,120 INFO auth.client {name}={} region=eu-west-1"),
    ("go", '{name} := "{}"'),
    ("ini", "{name} = {}"),
    ("shell", 'docker run -e {name}={} -p 8080:8080 app:latest'),
    ("toml", '{name} = "{}"'),
    ("php", "${name} = '{}';"),
    ("shell", "kubectl create secret generic app --from-literal={name}={}"),
    ("csharp", 'var {name} = "{}";'),
    ("ruby", "{name}: '{}',"),
    ("java", 'private static final String {name} = "{}";'),
    ("xml", "<{name}>{}</{name}>"),
    ("powershell", '$env:{name} = "{}"'),
    ("log-line", "[worker-3] request failed {name}: {} status=403"),
    ("windows", "set {name}={}"),
    ("properties", "{name}={}"),
    ("js", "  {name}: '{}',"),
]


def _human_password(rng: Rng) -> str:
    words = ["summer", "dragon", "Monkey", "sunshine", "Princess", "football", "Welcome", "winter", "Tiger", "Liverpool",
             "Secret", "autumn", "Shadow", "Master", "pepper", "falcon"]
    shape = rng.randrange(5)
    if shape == 0:
        return rng.choice(words).capitalize() + str(rng.randrange(10, 2030)) + rng.choice("!@#$%&*?")
    if shape == 1:
        return _s(rng, string.ascii_letters + string.digits + "!@#%^&*", rng.randrange(10, 20))
    if shape == 2:
        w = rng.choice(words)
        return w.replace("a", "@").replace("o", "0").replace("e", "3") + str(rng.randrange(100))
    if shape == 3:
        return rng.choice(["changeme", "password1", "letmein", "admin123", "qwerty123", "P@ssw0rd", "Passw0rd!"])
    return f"{rng.choice(words)}-{rng.choice(words)}-{rng.randrange(10, 99)}"


VALUE_SHAPES: list[Callable[[Rng], str]] = [
    lambda r: _s(r, B62, r.randrange(20, 41)),
    lambda r: _s(r, HEX, 32),
    lambda r: str(uuid.UUID(int=r.getrandbits(128))),
    lambda r: _b64_bytes(r, 32),
    lambda r: _s(r, HEX, 64),
    lambda r: _s(r, B62, r.randrange(12, 20)),
    lambda r: _s(r, HEX, 40),
    lambda r: _b64_bytes(r, 24, url=True),
    lambda r: _s(r, HEX.upper(), 32),
    lambda r: str(uuid.UUID(int=r.getrandbits(128))).upper(),
]


def _named_samples(rng: Rng, split: str) -> Iterator[Sample]:
    contexts = halves(NAMED_CONTEXTS, split)
    stems, suffixes, styles = halves(NAME_STEMS, split), halves(NAME_SUFFIXES, split), halves(CASE_STYLES, split)
    shapes, bare = halves(VALUE_SHAPES, split), halves(BARE_NAMES, split)
    for i in range(PER_GENERIC * 2):
        context, template = rng.choice(contexts)
        if i % 4 == 0:
            name = rng.choice(bare)
        else:
            style = rng.choice(styles)
            if context in ("env-file", "shell", "windows", "powershell") and style not in ("upper", "snake"):
                style = "upper"
            if context in ("python", "js", "go", "csharp", "java", "php", "ruby") and style in ("kebab", "dotted"):
                style = "camel"
            name = _case(rng, rng.choice(stems), rng.choice(suffixes), style)
        value = _human_password(rng) if any(w in name.lower() for w in ("pass", "pwd")) else rng.choice(shapes)(rng)
        text_template = template.replace("{name}", name)
        category = "secret/generic-kv/hex-uuid" if _is_hexish(value) else "secret/generic-kv"
        yield place(text_template, [(value, "SECRET")], category=category, context=context)


def _is_hexish(value: str) -> bool:
    return all(c in "0123456789abcdefABCDEF-" for c in value)


# -- URL query parameters -----------------------------------------------------------------------

URL_PARAMS = ["key", "token", "sig", "access_token", "api_key", "apikey", "auth", "secret", "signature",
              "X-Amz-Signature", "client_secret", "password", "code", "auth_token", "private_token", "pass",
              "session_token", "id_token", "X-Goog-Signature", "refresh_token", "pwd", "accessKey"]
URL_TEMPLATES = [
    ("url", "https://{host}/api/v2/items?{p}={}&page=2"),
    ("shell", 'curl "https://{host}/export.csv?format=csv&{p}={}"'),
    ("chat", "try https://{host}/d/report?{p}={} it should work now"),
    ("log-line", '10.0.4.7 - - [02/Mar/2024:11:04:55 +0000] "GET /v1/feed?{p}={}&limit=50 HTTP/1.1" 200 512'),
    ("js", "fetch(`https://{host}/graphql?{p}={}`)"),
    ("url", "https://{host}/sharing/file.pdf?sv=2022-11-02&se=2024-12-31&{p}={}"),
    ("python", 'requests.get("https://{host}/search?q=shoes&{p}={}")'),
    ("shell", "wget -q 'https://{host}/backup.tgz?{p}={}' -O backup.tgz"),
    ("yaml", "  url: https://{host}/hooks/deploy?{p}={}"),
    ("markdown", "[dashboard](https://{host}/embed?theme=dark&{p}={})"),
]
HOSTS = ["api.example.com", "files.acme.io", "storage.example.net", "dash.internal.corp", "cdn.vendor.dev",
         "reports.example.org"]


def _url_value(rng: Rng, shapes: list[Callable[[Rng], str]]) -> str:
    value = rng.choice(shapes)(rng)
    return value.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def _url_samples(rng: Rng, split: str) -> Iterator[Sample]:
    params, templates = halves(URL_PARAMS, split), halves(URL_TEMPLATES, split)
    shapes = halves(VALUE_SHAPES, split)
    for _ in range(PER_GENERIC):
        context, template = rng.choice(templates)
        template = template.replace("{host}", rng.choice(HOSTS)).replace("{p}", rng.choice(params))
        yield place(template, [(_url_value(rng, shapes), "SECRET")], category="secret/url-param", context=context)


# -- passwords as arguments of admin tools --------------------------------------------------------

USERS = ["administrator", "svc_backup", "alice", "deploy", "sa", "root", "jdoe", "admin", "postgres", "backup"]
# {u}: user, {h}: host, {} the password
CLI_TEMPLATES = [
    "net user {u} {} /add",
    "sqlcmd -S {h} -U {u} -P {} -Q \"SELECT 1\"",
    "ldapsearch -x -H ldap://{h} -D cn={u},dc=corp,dc=local -w {} -b dc=corp,dc=local",
    "smbclient //{h}/share -U {u}%{}",
    "xfreerdp /v:{h} /u:{u} /p:{}",
    "az login -u {u}@corp.example.com -p {}",
    "echo {} | sudo -S apt-get update",
    "htpasswd -b -c /etc/nginx/.htpasswd {u} {}",
    "mysql -u {u} -p{} -h {h} shop",
    'psql "host={h} user={u} password={} dbname=app"',
    "curl -u {u}:{} https://{h}/api/health",
    "sshpass -p {} ssh {u}@{h}",
    "net use \\\\{h}\\share {} /user:CORP\\{u}",
    "mount -t cifs //{h}/data /mnt/data -o username={u},password={}",
    "rdesktop -u {u} -p {} {h}",
    "wget --user={u} --password={} https://{h}/private/file.zip",
    "mongosh mongodb://{h}:27017 -u {u} -p {}",
    "redis-cli -h {h} -a {} ping",
    "keytool -list -keystore app.jks -storepass {}",
    "openssl pkcs12 -export -in c.pem -out c.p12 -passout pass:{}",
    "echo '{u}:{}' | chpasswd",
    "lftp -u {u},{} sftp://{h}",
    "psexec \\\\{h} -u {u} -p {} cmd.exe",
    "mysqldump -u{u} --password={} shop > shop.sql",
    "PGPASSWORD={} psql -h {h} -U {u} app",
    "docker login -u {u} -p {} registry.example.com",
    "runas /user:{u} \"cmd /c whoami\" & echo {}",
    "smbclient -L {h} -U {u} --password={}",
    "printf '%s\\n' '{}' | sudo -S systemctl restart nginx",
    "ipmitool -I lanplus -H {h} -U {u} -P {} power status",
    "winrm set winrm/config/client @{{TrustedHosts=\"{h}\"}} ; winrs -r:{h} -u:{u} -p:{} ipconfig",
    "vncviewer {h}:1 -passwd <(echo {})",
]
CLI_HOSTS = ["db01", "10.0.0.12", "fs.corp.local", "sql-prod", "dc1.corp.local", "nas"]


def _cli_samples(rng: Rng, split: str) -> Iterator[Sample]:
    templates = halves(CLI_TEMPLATES, split)
    for _ in range(PER_GENERIC):
        template = rng.choice(templates).replace("{u}", rng.choice(USERS)).replace("{h}", rng.choice(CLI_HOSTS))
        if "runas" in template:  # not a password argument; keep the list honest, skip the odd one
            continue
        password = _human_password(rng)
        if "'" in password or '"' in password:
            password = password.replace("'", "").replace('"', "")
        yield place(template, [(password, "SECRET")], category="secret/cli-password", context="shell")


# -- passwords in terse prose -----------------------------------------------------------------------

PROSE_TEMPLATES = [
    ("chat", "pw: {}"),
    ("chat", "pass for {h}: {}"),
    ("chat", "the password is {}"),
    ("chat", "wifi password is {} btw"),
    ("chat", "creds: {u} / {}"),
    ("chat", "login {u} password {}"),
    ("chat", "my jira password is {}"),
    ("chat", "new pw = {}"),
    ("email", "Your temporary password: {}"),
    ("chat", "pwd for the nas is {}"),
    ("chat", "use {u} / {} for the staging box"),
    ("chat", "Password: {}"),
    ("chat", "passwd {}"),
    ("chat", "the admin pass is {} dont share"),
    ("email", "Username: {u}\nPassword: {}"),
    ("chat", "PW for {h} = {}"),
    ("chat", "password for {u} on {h} is {}"),
    ("chat", "mot de passe : {}"),
]


def _prose_samples(rng: Rng, split: str) -> Iterator[Sample]:
    templates = halves(PROSE_TEMPLATES, split)
    for _ in range(PER_GENERIC):
        context, template = rng.choice(templates)
        template = template.replace("{u}", rng.choice(USERS)).replace("{h}", rng.choice(CLI_HOSTS))
        yield place(template, [(_human_password(rng), "SECRET")], category="secret/prose-password", context=context)


# -- look-alikes that must come out unchanged ----------------------------------------------------------


def _prose_b64(rng: Rng) -> str:
    sentences = ["hello world, this is a test", "the quick brown fox jumps over the lazy dog",
                 "meeting moved to thursday at 3pm", "please review the attached report before friday",
                 "{\"name\": \"widget\", \"size\": 3}", "lorem ipsum dolor sit amet consectetur"]
    return base64.b64encode(rng.choice(sentences).encode()).decode()


def _sha(rng: Rng, n: int = 40) -> str:
    return _s(rng, HEX, n)


LOOKALIKES: dict[str, list[tuple[str, Callable[[Rng], str]]]] = {
    "go-sum-hash": [
        ("go.sum", lambda r: f"golang.org/x/net v0.{r.randrange(30)}.0 h1:{_b64_bytes(r, 32)}"),
        ("go.sum", lambda r: f"github.com/stretchr/testify v1.{r.randrange(10)}.0/go.mod h1:{_b64_bytes(r, 32)}"),
        ("shell", lambda r: f"grep h1:{_b64_bytes(r, 32)} go.sum"),
        ("go.sum", lambda r: f"gopkg.in/yaml.v3 v3.0.1 h1:{_b64_bytes(r, 32)}"),
    ],
    "integrity-hash": [
        ("json", lambda r: f'"integrity": "sha512-{_b64_bytes(r, 64)}",'),
        ("html", lambda r: f'<script src="app.js" integrity="sha384-{_b64_bytes(r, 48)}" crossorigin="anonymous">'),
        ("yaml", lambda r: f"  resolution: {{integrity: sha512-{_b64_bytes(r, 64)}}}"),
        ("json", lambda r: f'"checksum": "sha256-{_b64_bytes(r, 32)}"'),
    ],
    "base64-prose": [
        ("shell", lambda r: f"echo {_prose_b64(r)} | base64 -d"),
        ("python", lambda r: f"base64.b64decode('{_prose_b64(r)}')"),
        ("chat", lambda r: f"decode this: {_prose_b64(r)}"),
        ("json", lambda r: f'"payload": "{_prose_b64(r)}"'),
    ],
    "placeholder": [
        ("env-file", lambda r: r.choice(["API_KEY=<your-api-key>", "GITHUB_TOKEN=<token>", "SECRET_KEY=xxxxxxxxxxxxxxxx",
                                         "STRIPE_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "DB_PASSWORD=********"])),
        ("yaml", lambda r: r.choice(["  token: YOUR_TOKEN_HERE", "  api_key: <insert key>", "password: '...'",
                                     "  secret: REPLACE_ME", "  client_secret: <client-secret>"])),
        ("python", lambda r: r.choice(['api_key = "YOUR_API_KEY"', 'token = "<token>"', 'SECRET = "xxxx-xxxx-xxxx"',
                                       'password = "<password>"'])),
        ("shell", lambda r: r.choice(["export OPENAI_API_KEY=sk-...", "export TOKEN=...", "curl -u user:<password> x",
                                      "export AWS_SECRET_ACCESS_KEY=<secret>", "gh auth login --with-token <token>"])),
    ],
    "var-reference": [
        ("shell", lambda r: r.choice(["export DB_PASSWORD=${DB_PASSWORD}", 'mysql -u root -p"$MYSQL_PWD"',
                                      "curl -H \"Authorization: Bearer $TOKEN\" https://api.example.com",
                                      "docker login -u ci -p $CI_REGISTRY_PASSWORD registry.example.com",
                                      "sshpass -p \"$SSHPASS\" ssh web01"])),
        ("yaml", lambda r: r.choice(["  password: {{ .Values.db.password }}", "  token: ${{ secrets.NPM_TOKEN }}",
                                     "  api_key: ${API_KEY}", "  secret: !vault db_secret"])),
        ("python", lambda r: r.choice(["password = os.environ['DB_PASSWORD']", "token = settings.API_TOKEN",
                                       "cur.execute(q, (user, password))", 'secret = "%(secret)s" % cfg'])),
        ("js", lambda r: r.choice(["const apiKey = process.env.API_KEY;", "const token = await getToken();",
                                   "headers: { Authorization: `Bearer ${token}` }", "password: config.get('db.password'),"])),
    ],
    "slack-xoxo": [
        ("url", lambda r: f"https://blog.example.com/2024/xoxo-{r.choice(['gossip', 'love', 'friends'])}-recap-{r.randrange(99)}"),
        ("chat", lambda r: f"thanks for everything! xoxo-{r.choice(['Anna', 'mom', 'grandma'])}"),
        ("chat", lambda r: f"see https://shop.example.com/products/xoxo-{r.choice(['mug', 'tee'])}-{r.randrange(1000)}"),
        ("markdown", lambda r: f"[XOXO tour](https://events.example.org/xoxo-festival-{r.randrange(2015, 2025)})"),
    ],
    "objc-selector": [
        ("objc", lambda r: "[self.tableView deselectRowAtIndexPath:indexPath animated:YES];"),
        ("objc", lambda r: r.choice(["@selector(applicationDidFinishLaunching:)", "SEL s = @selector(tableView:cellForRowAtIndexPath:);",
                                     "- (void)observeValueForKeyPath:(NSString *)keyPath ofObject:(id)object"])),
        ("objc", lambda r: r.choice(["[[NSNotificationCenter defaultCenter] addObserver:self selector:@selector(keyboardWillShow:)",
                                     "- (BOOL)application:(UIApplication *)application didFinishLaunchingWithOptions:(NSDictionary *)launchOptions"])),
        ("objc", lambda r: r.choice(["[dict setObject:value forKey:@\"authToken\"];", "NSString *key = [defaults stringForKey:@\"apiKeyName\"];"])),
    ],
    "git-sha": [
        ("shell", lambda r: f"git checkout {_sha(r)}"),
        ("chat", lambda r: f"fixed in {_sha(r)[:r.choice([7, 8, 12])]}, please pull"),
        ("shell", lambda r: f"git revert --no-edit {_sha(r)}"),
        ("log-line", lambda r: f"commit {_sha(r)} (HEAD -> main, origin/main)"),
    ],
    "uuid": [
        ("chat", lambda r: f"ticket id {uuid.UUID(int=r.getrandbits(128))}"),
        ("json", lambda r: f'"request_id": "{uuid.UUID(int=r.getrandbits(128))}"'),
        ("sql", lambda r: f"SELECT * FROM orders WHERE id = '{uuid.UUID(int=r.getrandbits(128))}';"),
        ("shell", lambda r: f"kubectl delete pod --field-selector metadata.uid={uuid.UUID(int=r.getrandbits(128))}"),
    ],
    "version": [
        ("shell", lambda r: f"pip install numpy=={r.randrange(1, 3)}.{r.randrange(30)}.{r.randrange(10)}"),
        ("chat", lambda r: f"upgraded to v{r.randrange(1, 20)}.{r.randrange(20)}.{r.randrange(20)}-rc.{r.randrange(5)}+build.{r.randrange(999)}"),
        ("json", lambda r: f'"version": "{r.randrange(10)}.{r.randrange(20)}.{r.randrange(20)}-beta.{r.randrange(9)}"'),
        ("shell", lambda r: f"docker pull postgres:{r.randrange(12, 17)}.{r.randrange(9)}-bookworm"),
    ],
    "file-path": [
        ("shell", lambda r: f"ls /var/lib/docker/overlay2/{_sha(r, 64)}/merged"),
        ("chat", lambda r: r.choice(["see src/components/AuthTokenProvider.tsx line 40", "open services/secret_manager/key_rotation.py",
                                     "config lives in ~/.config/app/credentials.json"])),
        ("shell", lambda r: r.choice(["cat /etc/ssl/private/server.key", "chmod 600 ~/.ssh/id_ed25519",
                                      "export GOOGLE_APPLICATION_CREDENTIALS=/etc/gcp/service-account.json"])),
        ("python", lambda r: r.choice(["key_path = 'certs/prod/tls.key'", "TOKEN_FILE = '/run/secrets/api_token'"])),
    ],
    "docker-digest": [
        ("shell", lambda r: f"docker pull nginx@sha256:{_sha(r, 64)}"),
        ("yaml", lambda r: f"    image: ghcr.io/acme/api@sha256:{_sha(r, 64)}"),
        ("log-line", lambda r: f"Digest: sha256:{_sha(r, 64)}"),
        ("shell", lambda r: f"echo '{_sha(r, 64)}  app.tar.gz' | sha256sum -c"),
    ],
    "identifier": [
        ("python", lambda r: r.choice(["def test_password_reset_token_expires_after_one_hour():",
                                       "class AbstractSingletonProxyFactoryBean:", "handleSubmitButtonClick2024()"])),
        ("js", lambda r: r.choice(["export function useAuthTokenRefreshInterceptor() {", "const maxTokensPerRequest = 4096;",
                                   "import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';"])),
        ("java", lambda r: r.choice(["PasswordEncoderFactories.createDelegatingPasswordEncoder()",
                                     "private final KeyStoreKeyFactory keyStoreKeyFactory;"])),
        ("sql", lambda r: r.choice(["ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL;",
                                    "CREATE INDEX idx_api_keys_owner ON api_keys (owner_id);"])),
    ],
    "secret-word-prose": [
        ("chat", lambda r: r.choice(["reset your password from the login page", "the key is to keep it simple",
                                     "token: null means logged out", "I forgot my password again lol"])),
        ("python", lambda r: r.choice(["KEY_LENGTH = 32", "primary_key=True", "max_tokens=256", "sort_key = 'created_at'",
                                       "token_type = 'bearer'"])),
        ("yaml", lambda r: r.choice(["password: required", "keyboard: us", "token_ttl: 3600", "secret_name: db-creds",
                                     "monkey: 3"])),
        ("shell", lambda r: r.choice(["docker login --password-stdin < pw.txt", "ssh -p 2222 web01",
                                      "mysql -u root -p", "net user jdoe /delete", "curl -u alice https://api.example.com",
                                      "az login --identity", "psql -h db -U app"])),
    ],
    "url-params": [
        ("url", lambda r: f"https://shop.example.com/search?q=red+shoes&page={r.randrange(9)}&sort=price_desc"),
        ("url", lambda r: "https://example.com/post?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale"),
        ("chat", lambda r: f"https://docs.example.com/reset?step={r.randrange(5)}&lang=en see step 2"),
        ("url", lambda r: r.choice(["https://huggingface.co/bert-base?tokenizer=fast", "https://example.com/api?keyword=password+reset",
                                    "https://example.com/?key=value"])),
    ],
    "public-key": [
        ("shell", lambda r: f"echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{_b64_bytes(r, 32)}' >> authorized_keys"),
        ("chat", lambda r: f"my key: ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{_b64_bytes(r, 200)}"),
        ("chat", lambda r: f"-----BEGIN PUBLIC KEY-----\n{_b64_bytes(r, 48)}\n-----END PUBLIC KEY-----"),
        ("shell", lambda r: f"cat > ca.crt <<EOF\n-----BEGIN CERTIFICATE-----\n{_b64_bytes(r, 48)}\n-----END CERTIFICATE-----\nEOF"),
    ],
}
HELDOUT_ONLY_LOOKALIKES: dict[str, list[tuple[str, Callable[[Rng], str]]]] = {
    "k8s-name": [
        ("shell", lambda r: f"kubectl logs web-{_s(r, HEX, 10)}-{_s(r, 'bcdfghjklmnpqrstvwxz2456789', 5)}"),
        ("log-line", lambda r: f"pod/api-{_s(r, HEX, 9)}-{_s(r, 'bcdfghjklmnpqrstvwxz2456789', 5)} restarted"),
    ],
    "hash-sum": [
        ("shell", lambda r: f"{_sha(r, 32)}  ubuntu-24.04-live-server-amd64.iso"),
        ("chat", lambda r: f"md5 is {_sha(r, 32)} and sha1 {_sha(r, 40)}"),
    ],
}


def _lookalike_samples(rng: Rng, split: str) -> Iterator[Sample]:
    families = dict(LOOKALIKES, **(HELDOUT_ONLY_LOOKALIKES if split == "heldout" else {}))
    for family, makers in families.items():
        mine = halves(makers, split) if len(makers) >= 2 else makers
        for _ in range(PER_LOOKALIKE // 2 if family in HELDOUT_ONLY_LOOKALIKES else PER_LOOKALIKE):
            context, make = rng.choice(mine)
            yield Sample(make(rng), [], f"lookalike/{family}", context)


def generate(rng: random.Random, *, split: str) -> Iterator[Sample]:
    """Every secret family and look-alike of one split (see the module docstring for how they differ)."""
    yield from _vendor_samples(rng, split)
    yield from _named_samples(rng, split)
    yield from _url_samples(rng, split)
    yield from _cli_samples(rng, split)
    yield from _prose_samples(rng, split)
    yield from _lookalike_samples(rng, split)
