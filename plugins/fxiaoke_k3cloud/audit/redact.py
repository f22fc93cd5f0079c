"""Redaction of secrets from anything the audit store writes.

Request and response bodies of both APIs carry credentials in predictable places: Fxiaoke sends
``corpAccessToken`` / ``permanentCode`` / ``appSecret`` in JSON bodies, K3Cloud sends the session in
``kdservice-sessionid`` and ``ASP.NET_SessionId`` cookies, signed mode sends ``X-Api-Signature``, and
K3Cloud's own wire format nests the business payload as a JSON *string* inside JSON. So redaction works
on key names (camelCase, snake_case and header-style alike), descends into JSON found inside strings,
and scrubs ``key=value`` / ``"key": "value"`` / ``Bearer …`` fragments out of free text such as
error messages and URLs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
#: Longest string kept inside a redacted structure.
MAX_STRING = 1000
#: Longest excerpt (serialised JSON) stored per request / response.
MAX_EXCERPT = 4096
_MAX_DEPTH = 20

# Compared against key names lower-cased with ``_``, ``-`` and ``.`` removed, so ``permanentCode``,
# ``permanent_code`` and ``Permanent-Code`` all match ``permanentcode``.
SENSITIVE_KEY_PARTS = (
    "password",
    "secret",
    "token",
    "sessionid",
    "permanentcode",
    "appsecret",
    "signature",
    "authorization",
    "cookie",
)
_KEY_PATTERN = r"[\w.-]*(?:password|secret|token|session[_-]?id|permanent[_-]?code|signature|authorization|cookie)[\w.-]*"
# ``key=value`` (query strings, cookies), ``key: value`` and ``"key": "value"`` (JSON, headers).
# The look-behind anchors a key at the start of a word: without it the pattern backtracks
# quadratically through long words (base64 bodies, hashes).
_KV_RE = re.compile(
    rf"""(?ix)
    (?<![\w.-])(?P<key>["']?{_KEY_PATTERN}["']?)
    (?P<sep>\s*[:=]\s*)
    (?P<value>"[^"]*"|'[^']*'|(?:bearer|basic)\s+[^\s"',;&}}]+|[^\s"',;&}}]+)
    """
)
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key names a secret (case and separator insensitive)."""
    return _is_sensitive_name(str(key))


@functools.lru_cache(maxsize=4096)
def _is_sensitive_name(name: str) -> bool:
    # Payloads repeat the same few hundred field names; the cache makes the check a dict lookup.
    norm = re.sub(r"[_.\-\s]", "", name).lower()
    return any(part in norm for part in SENSITIVE_KEY_PARTS)


def scrub_text(text: str) -> str:
    """Mask secret-looking ``key=value`` pairs and bearer/basic credentials inside free text."""

    def _mask(m: re.Match[str]) -> str:
        value = m.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{m.group('key')}{m.group('sep')}{quote}{MASK}{quote}"

    return _BEARER_RE.sub(lambda m: f"{m.group(1)} {MASK}", _KV_RE.sub(_mask, text))


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def _redact_str(value: str, max_string: int, depth: int) -> Any:
    if len(value) < 4:  # too short to hold "key=value" or JSON worth parsing
        return value
    stripped = value.strip()
    # K3Cloud nests its payload as a JSON string (``"data": "{...}"``): redact inside it too.
    if stripped[:1] in ("{", "[") and depth < _MAX_DEPTH:
        try:
            parsed = json.loads(stripped)
        except ValueError:
            pass
        else:
            inner = _redact(parsed, max_string, depth + 1)
            return _truncate(json.dumps(inner, ensure_ascii=False, default=str), max_string)
    # Cut first, so a megabyte body costs no more to scrub than ``max_string`` characters.
    return scrub_text(_truncate(value, max_string))


def _redact(obj: Any, max_string: int, depth: int) -> Any:
    # Cheapest and commonest types first: this runs for every value of thousands of payloads a run.
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, str):
        return _redact_str(obj, max_string, depth)
    if depth > _MAX_DEPTH:
        return "…[nested too deep]"
    if isinstance(obj, (dict, Mapping)):
        return {
            str(k): MASK if is_sensitive_key(k) else _redact(v, max_string, depth + 1) for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_redact(v, max_string, depth + 1) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return _redact_str(bytes(obj).decode("utf-8", errors="replace"), max_string, depth)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _redact(dataclasses.asdict(obj), max_string, depth)
    # Anything else (datetimes, Decimals, exceptions…) is stored as its text, scrubbed like any text.
    return scrub_text(_truncate(str(obj), max_string))


def redact(obj: Any, *, max_string: int = MAX_STRING) -> Any:
    """Return a copy of ``obj`` with secrets replaced by ``"***"`` and long strings truncated.

    Values of keys whose names contain password, secret, token, sessionid/session_id, permanent_code,
    appsecret, signature, authorization or cookie (any case, any separator) are masked wholesale;
    strings are scrubbed of ``key=value`` secrets and bearer credentials; JSON inside strings is
    redacted recursively. Tuples and sets come back as lists, dataclasses as dicts.
    """
    return _redact(obj, max_string, 0)


def excerpt(obj: Any, *, limit: int = MAX_EXCERPT) -> str | None:
    """Redact ``obj`` and serialise it to at most about ``limit`` characters of JSON text (None stays None)."""
    if obj is None:
        return None
    text = json.dumps(redact(obj), ensure_ascii=False, default=str, sort_keys=False)
    return no_nul(_truncate(text, limit))  # json writes NUL as \u0000 already; a raw one must never pass


def no_nul(text: str) -> str:
    """``text`` with every NUL written as the four characters ``\\x00`` (PostgreSQL refuses NUL in text)."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def safe_text(text: str | None, *, limit: int = 4000) -> str | None:
    """Scrub and truncate free text (reasons, names, messages) before it is stored; NUL is escaped."""
    if text is None:
        return None
    return no_nul(scrub_text(_truncate(str(text), limit)))
