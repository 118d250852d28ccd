"""Vendor tokens: keys whose own format says what they are (prefix, length, alphabet, checksum).

Written from the formats the vendors publish, one alternation so the regex
engine tests every prefix in a single pass, behind a literal pre-filter so a
line of prose costs one short search. Composite tokens (a Discord bot token's
three dot-separated parts, a Slack or Discord webhook URL, a Twilio
``SID:token`` pair) are one match: redacting one part leaks the others.

Azure's identifiable keys (storage, Cosmos DB, Service Bus, Event Hub,
Functions, API Management, Entra ID client secrets with ``7Q~``/``8Q~``, the
common annotated ``JQQJ9`` keys) carry a signature and checksum only
Microsoft's rule set knows: they are found by its package,
microsoft-security-utilities-secret-masker, through its API (measured in
benchmarks/secret_detection.py: it caught the Azure family where our rules
caught none), and only run on text with a token long enough to be one.

A prefix followed by a run of one letter (``sk_live_xxxxxxxxxxxxxxxx``,
``ghp_XXXX...``) is the placeholder of a README, not a key: a match whose
random part has fewer than 6 distinct characters, or spells ``xxxx`` or
``0000``, is dropped.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["find_vendor_tokens", "github_checksum_ok", "has_long_word"]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_W = r"[A-Za-z0-9_-]"  # base64url

_VENDOR_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?:"
    r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
    r"|gl(?:pat|dt|rt|cbt|ptt|oas|soat|ffct|imt|agent|ft|wt|rtr)-[A-Za-z0-9_.-]{20,}|GR1348941[A-Za-z0-9_-]{20,}"  # GitLab
    r"|xox[a-z]-\d[A-Za-z0-9-]{8,}|xoxe\.xox[a-z]-\d-[A-Za-z0-9-]{20,}|xapp-\d-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,}"  # Slack webhooks
    r"|[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}"  # Discord bot token, all three parts
    r"|https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{40,}"  # Discord webhook
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{20,}"  # Stripe
    r"|AC[0-9a-f]{32}:[0-9a-f]{32}|SK[0-9a-fA-F]{32}"  # Twilio SID:auth token pair, API key SID
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"  # SendGrid
    r"|npm_[A-Za-z0-9]{36}|pypi-AgE[A-Za-z0-9_-]{50,}|oy2[a-z2-7]{43}"  # npm, PyPI, NuGet
    r"|dp\.(?:pt|st|sa|ct|scim|audit)\.(?:[a-z0-9_-]{1,40}\.)?[A-Za-z0-9]{40,}"  # Doppler
    r"|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"  # Shopify
    r"|dapi[a-f0-9]{32}(?:-\d)?|do[opr]_v1_[a-f0-9]{64}"  # Databricks, DigitalOcean
    r"|lin_(?:api|oauth)_[A-Za-z0-9]{32,}|(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})"  # Linear, Notion
    r"|AT(?:ATT|CTT)3[A-Za-z0-9_=-]{100,}|ATBB[A-Za-z0-9]{32}"  # Atlassian API tokens, Bitbucket app passwords
    r"|hv[sbr]\.[A-Za-z0-9_-]{24,}|s\.[A-Za-z0-9]{24}(?![.A-Za-z0-9])"  # Vault (service, batch, recovery, legacy)
    r"|sgp_(?:[a-f0-9]{16}_|local_)?[a-f0-9]{40}|pul-[a-f0-9]{40}"  # Sourcegraph, Pulumi
    r"|hf_[A-Za-z0-9]{30,}|api_org_[A-Za-z0-9]{30,}"  # Hugging Face user and org tokens
    r"|glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}|eyJrIjoi[A-Za-z0-9+/]{40,}={0,2}"  # Grafana
    r"|sk-ant-[A-Za-z0-9_-]{20,}|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"  # Anthropic, OpenAI
    r"|AIza[0-9A-Za-z_-]{35}|ya29\.[0-9A-Za-z_-]{20,}|GOCSPX-[A-Za-z0-9_-]{28}"  # Google key, OAuth token, client secret
    r"|key-[0-9a-zA-Z]{32}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}"  # Mailgun, Postman
    r"|NR(?:AK|II|JS|AA|SP)-[A-Za-z0-9_-]{19,}|HRKU-[A-Za-z0-9_-]{50,}"  # New Relic, Heroku
    r"|\d{8,10}:AA[A-Za-z0-9_-]{33}"  # Telegram bot
    r"|EAAA[A-Za-z0-9_-]{60}|sq0(?:atp|csp)-[A-Za-z0-9_-]{22,43}"  # Square
    r"|[a-f0-9]{32}-us\d{1,2}"  # Mailchimp
    r"|ops_eyJ[A-Za-z0-9_-]{100,}|pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,}|sbp_[a-f0-9]{40}"  # 1Password, PlanetScale, Supabase
    r"|tskey-(?:auth|api|client|scim|webhook)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{20,}|figd_[A-Za-z0-9_-]{40}"  # Tailscale, Figma
    r"|fo1_[A-Za-z0-9_-]{43}|(?:FlyV1 )?fm[12][a-z]?_[A-Za-z0-9+/=_-]{50,}"  # Fly.io
    r"|dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}|dckr_pat_[A-Za-z0-9_-]{27}"  # Dynatrace, Docker Hub
    r"|(?:sntrys_eyJ|sntryu_)[A-Za-z0-9+/=_]{60,}|rubygems_[a-f0-9]{48}|bkua_[a-f0-9]{40}"  # Sentry, RubyGems, Buildkite
    r"|CFPAT-[A-Za-z0-9_-]{43}|nf[pc]_[A-Za-z0-9]{36}|shippo_(?:live|test)_[a-f0-9]{40}"  # Contentful, Netlify, Shippo
    r"|[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_-]{60,}|sk\.eyJ[A-Za-z0-9_-]{50,}\.[A-Za-z0-9_-]{20,}"  # Terraform Cloud, Mapbox secret
    r"|gsk_[A-Za-z0-9]{52}|xai-[A-Za-z0-9]{80}|r8_[A-Za-z0-9]{37}|pplx-[A-Za-z0-9]{48}"  # Groq, xAI, Replicate, Perplexity
    r"|lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}|pcsk_[A-Za-z0-9_]{40,}|LTAI[A-Za-z0-9]{20}"  # LangSmith, Pinecone, Alibaba
    r"|v1\.0-[a-f0-9]{24}-[a-f0-9]{146}|AKCp[A-Za-z0-9]{69}|cmVmdGtu[A-Za-z0-9]{56}"  # Cloudflare origin CA, JFrog
    r"|dop_v1_[a-f0-9]{64}|EAACEdEose0cBA[0-9A-Za-z]+|AGE-SECRET-KEY-1[0-9A-Z]{58}"  # Facebook, age
    r"|eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWT: base64url of '{"' twice
    r")(?![A-Za-z0-9_])"
)
# Literals of which one is in every token above; searched first (one pass over prose).
_VENDOR_HINT_RE = re.compile(
    r"A[A-Z0-9]{3}[A-Z0-9]{16}|gh[pousr]_|github_pat_|gl[a-z]{1,5}-|GR1348941|xox|xapp-|hooks\.slack|discord"
    r"|_live_|_test_|whsec_|AC[0-9a-f]{32}:|SK[0-9a-fA-F]{32}|SG\.|npm_|pypi-|oy2|dp\.|shp|dapi|_v1_|lin_|secret_"
    r"|ntn_|AT[AC]TT3|ATBB|hv[sbr]\.|s\.[A-Za-z0-9]{24}|sgp_|pul-|hf_|api_org_|glc_|glsa_|eyJ|sk-|AIza|ya29\."
    r"|GOCSPX-|key-|PMAK-|NR[A-Z]{2}-|HRKU-|:AA|EAAA|sq0|-us\d|ops_|pscale_|sbp_|tskey-|figd_|fo1_|fm[12]|dt0c01"
    r"|dckr_|sntry|rubygems_|bkua_|CFPAT-|nf[pc]_|shippo_|atlasv1|gsk_|xai-|r8_|pplx-|lsv2_|pcsk_|LTAI|v1\.0-"
    r"|AKCp|cmVmdGtu|EAACEd|AGE-SECRET|[MNO][A-Za-z0-9_-]{23,27}\."
)
_PLACEHOLDER_RUN_RE = re.compile(r"(?i)x{4}|\*{3}|0{6}|\.\.\.|1234567890|abcdef(?:gh)?ijk")


def _is_placeholder(token: str) -> bool:
    """``sk_live_xxxxxxxxxxxx``, ``ghp_0000...``, ``AKIA...EXAMPLE``: documentation, not a key."""
    tail = token[-24:]
    return len(set(tail)) < 4 or bool(_PLACEHOLDER_RUN_RE.search(token)) or token.endswith("EXAMPLE")


def _mixed_alnum(s: str) -> bool:
    # Vault's legacy "s." tokens are 24 random base62 characters: a run of one case is a word.
    return any(c.isupper() for c in s) and any(c.islower() for c in s)


def github_checksum_ok(token: str) -> bool:
    """Whether a ``gh?_``/``npm_`` token's last 6 characters are the base62 CRC32 of its 30 random ones.

    GitHub and npm publish the layout: 4-character prefix, 30 random base62
    characters, 6-character checksum. A token that passes is proof; one that
    fails may still be a key (older formats, fine-grained tokens).
    """
    if len(token) != 40 or token[3] != "_":
        return False
    body, check = token[4:34], token[34:]
    n = 0
    for ch in check:
        i = _B62.find(ch)
        if i < 0:
            return False
        n = n * 62 + i
    return n == zlib.crc32(body.encode())


def _glued_github(text: str) -> Iterator[tuple[int, int]]:
    # A token typed straight into more text ("ghp_...36...and then") has no boundary after it;
    # its checksum still says where it ends.
    for m in re.finditer(r"(?:gh[pousr]|npm)_[A-Za-z0-9]{37,}", text):
        a = m.start()
        if github_checksum_ok(text[a:a + 40]):
            yield a, a + 40


# -- Azure, through Microsoft's rule set -----------------------------------------------------------

_LONG_TOKEN_RE = re.compile(r"[A-Za-z0-9+/_~.-]{40,}")


@functools.cache
def _azure_finder() -> Callable[[str], list[tuple[int, int]]]:
    import microsoft_security_utilities_secret_masker as msm

    # Only the identifiable formats (fixed signature + checksum): the package's generic
    # entropy and JWT patterns would double what our own detectors already decide.
    path = Path(msm.__file__).parent / "GeneratedRegexPatterns" / "HighConfidenceSecurityModels.json"
    patterns = {p for p in msm.load_regex_patterns_from_json_file(path.name) if "Identifiable" in (p.name or "")}
    masker = msm.SecretMasker(patterns)
    return lambda text: [(d.start, d.end) for d in masker.detect_secrets(text)]


# A vendor we have no rule for still tends to write PREFIX_ + random hex (CLOJARS_, rdme_, sbp_...);
# a hex digest after a word that names it as a digest or an object id is not a key.
_PREFIXED_HEX_RE = re.compile(r"(?<![\w.-])([A-Za-z][A-Za-z0-9]{1,11})[_-](?:[A-Za-z]{1,8}[_-])?([0-9a-fA-F]{32,})(?![\w-])")
_DIGEST_WORDS = frozenset({
    "sha", "sha1", "sha224", "sha256", "sha384", "sha512", "md5", "hash", "digest", "commit", "rev", "build", "layer",
    "blob", "cache", "tmp", "temp", "file", "id", "uuid", "ref", "object", "chunk", "img", "image", "run", "job",
    "sum", "checksum", "etag", "trace", "span", "request", "req", "session", "pod", "container", "node", "v",
})


def _prefixed_hex(text: str) -> Iterator[tuple[int, int]]:
    for m in _PREFIXED_HEX_RE.finditer(text):
        body = m.group(2)
        if m.group(1).lower() in _DIGEST_WORDS or sum(c.isdigit() for c in body) < 3 or body.isdigit():
            continue
        yield m.span()


def has_long_word(text: str, n: int = 20) -> bool:
    """Whether some whitespace-separated word has n+ characters: every token we look for does (str.split is C)."""
    return len(text) >= n and max(map(len, text.split()), default=0) >= n


def find_vendor_tokens(text: str) -> Iterator[tuple[int, int]]:
    if not has_long_word(text):
        return
    if _VENDOR_HINT_RE.search(text):
        for m in _VENDOR_TOKEN_RE.finditer(text):
            token = m.group()
            if _is_placeholder(token) or (token[:2] == "s." and not _mixed_alnum(token[2:])):
                continue
            yield m.span()
        if "gh" in text or "npm_" in text:
            yield from _glued_github(text)
    if "_" in text or "-" in text:
        yield from _prefixed_hex(text)
    if _LONG_TOKEN_RE.search(text):
        yield from _azure_finder()(text)
