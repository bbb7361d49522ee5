r"""Masking the secrets of connection strings, wherever they are printed or logged.

One scanner finds the secret values of a connection string in each form the
sinks accept; everything else stays readable, since where a URL points matters:

- a URL's user part, ``postgresql://app:SECRET@db/market``;
- secret query parameters of a URL, ``?user=app&password=SECRET``,
  InfluxDB's ``?u=app&p=SECRET`` and ``?token=SECRET``;
- libpq key=value settings, ``host=db password=SECRET``, quoted or not
  (``password='a b'``, ``password=a\ b``).

A parameter is secret when its name is one of :data:`SECRET_NAMES` or
contains ``password``, ``passwd``, ``secret`` or ``token``; a file *name*
(``passfile``, ``sslkey``) is not a secret and stays.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MASK", "SECRET_NAMES", "is_secret_name", "redact_text", "redact_url", "secret_values"]

MASK = "********"

#: Parameter names that hold a secret whatever else they contain.
SECRET_NAMES = frozenset({"p", "pass", "pwd", "key", "apikey", "api_key", "access_key",
                          "auth", "authorization", "credential", "credentials"})  # fmt: skip
_SECRET_PARTS = ("password", "passwd", "secret", "token")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: A URL inside free text: up to whitespace or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_QUERY_PARAM = re.compile(r"(?<=[?&])([^=&#]*)=([^&#]*)")
#: libpq ``key = value``: a value is quoted ('a \' b') or runs to the next blank (a\ b).
_KEY_VALUE = re.compile(
    r"(?<![\w?&.\-/])([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*(?:'|\\?$)|(?:[^\s\\]|\\.)+)",
    re.S,
)
_QUOTED = re.compile(r"\"([^\"]+)\"")


def is_secret_name(name: str) -> bool:
    """Return whether a parameter called ``name`` holds a secret."""
    name = unquote(name).strip().lower()
    return name in SECRET_NAMES or any(part in name for part in _SECRET_PARTS)


def _url_spans(url: str, offset: int = 0) -> list[tuple[int, int]]:
    """Return the spans of the secret values of ``url`` (which starts with its scheme)."""
    spans = []
    start = _SCHEME.match(url)
    if start is None:
        return spans
    rest = start.end()
    # libpq reads the user part up to '@' before the first '/': a raw '?' may be in a password
    slash = url.find("/", rest)
    authority_end = len(url) if slash < 0 else slash
    at = url.rfind("@", rest, authority_end)
    if at >= 0:
        colon = url.find(":", rest, at)
        if colon >= 0 and colon + 1 < at:
            spans.append((offset + colon + 1, offset + at))
        rest = at + 1
    for param in _QUERY_PARAM.finditer(url, rest):
        if param.group(2) and is_secret_name(param.group(1)):
            spans.append((offset + param.start(2), offset + param.end(2)))
    return spans


def _key_value_spans(text: str) -> list[tuple[int, int]]:
    """Return the spans of secret values of libpq ``key=value`` settings in ``text``."""
    return [(m.start(2), m.end(2)) for m in _KEY_VALUE.finditer(text) if is_secret_name(m.group(1))]


def _spans(conninfo: str) -> list[tuple[int, int]]:
    stripped = conninfo.lstrip()
    if _SCHEME.match(stripped):
        return _url_spans(stripped, len(conninfo) - len(stripped))
    return _key_value_spans(conninfo)


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:  # overlapping spans: mask their union
            start = last
        if end <= start:
            continue
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def redact_url(conninfo: str) -> str:
    """Return a connection string (URL or libpq ``key=value``) with its secrets masked.

    ``postgresql://app:s3cret@db:5432/market`` → ``postgresql://app:********@db:5432/market``;
    ``host=db password='a b'`` → ``host=db password=********``.
    """
    return _replace(conninfo, _spans(conninfo))


def secret_values(conninfo: str) -> list[str]:
    """Return the secret values of a connection string, as written and as they mean.

    A percent-encoded or quoted secret is returned both ways, longest first,
    so that :func:`redact_text` can find it in a library's error messages.
    """
    values = set()
    for start, end in _spans(conninfo):
        raw = conninfo[start:end]
        values.add(raw)
        values.add(unquote(raw))
        if raw.startswith("'"):
            values.add(re.sub(r"\\(.)", r"\1", raw[1:].removesuffix("'")))
        values.add(re.sub(r"\\(.)", r"\1", raw))
    return sorted((v for v in values if v), key=len, reverse=True)


def redact_text(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Return free text (an error message) with every secret masked.

    Masks the secrets of each URL and ``key=value`` setting in ``text``, each of
    ``secrets`` (values from :func:`secret_values`) and each ``"quoted"`` piece
    of one of them (libpq quotes the part of a connection string it cannot parse).
    """
    spans = []
    for url in _URL_IN_TEXT.finditer(text):
        spans.extend(_url_spans(url.group(), url.start()))
    spans.extend(_key_value_spans(text))
    text = _replace(text, spans)
    for secret in secrets:
        if len(secret) >= 4:  # shorter ones would mask bits of ordinary words
            text = text.replace(secret, MASK)
    return _QUOTED.sub(
        lambda m: f'"{MASK}"' if any(m.group(1) in s for s in secrets if s) else m.group(), text
    )
