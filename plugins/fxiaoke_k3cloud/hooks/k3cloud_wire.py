"""The bytes of one K3Cloud call: the JSON request body, whether a failed request ever left, and the decoding
of an answer into its body or a typed error (spec §1.5, §6).

Pure functions over ``requests`` objects, used by :class:`~fxiaoke_k3cloud.hooks.k3cloud_transport.K3CloudClient`;
the retry policy that acts on these errors stays in ``k3cloud_transport``.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests
from urllib3.exceptions import NewConnectionError

from fxiaoke_k3cloud.errors import (
    OutcomeUnknownError,
    PermanentApiError,
    RateLimitedError,
    RetryableApiError,
    TransportError,
)
from fxiaoke_k3cloud.hooks._http import truncate
from fxiaoke_k3cloud.hooks.k3cloud_response import SYSTEM, waf_block_message

_DECIMAL_ENCODER = msgspec.json.Encoder(decimal_format="number")


def encode_body(payload: dict[str, Any]) -> bytes:
    """The request body as UTF-8 JSON; a Decimal goes out as a JSON number with all its digits, never via float."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except TypeError:
        return _DECIMAL_ENCODER.encode(payload)


def never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the request provably never left: the TCP connection itself could not be made."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), NewConnectionError)


def decode_answer(response: requests.Response, service: str, *, write: bool, log: logging.Logger) -> Any:
    """The JSON body of a 200 answer; every other shape becomes a typed error (spec §1.5, §6).

    :param write: the call changes data: a 5xx or a body that is not JSON is then :class:`OutcomeUnknownError`
        (it may have been applied), never a retryable transport error.
    """
    name = service.rsplit(".", 1)[-1]
    host = urlsplit(response.url).netloc
    status = response.status_code
    response.encoding = response.encoding or "utf-8"
    text = response.text.lstrip("\ufeff")
    if status == 429:
        raise RateLimitedError(f"HTTP 429 from {host}", system=SYSTEM, endpoint=name, code=429)
    if status not in (200, 206):
        if write and status >= 500:
            raise OutcomeUnknownError(
                f"{name} got HTTP {status} from {host}; a gateway error after sending may hide an applied "
                "write. Read the record back before retrying",
                system=SYSTEM, endpoint=name, status=status,
            )
        hint = "" if status >= 500 else " (is the host the K3Cloud base URL ending /k3cloud/?)"
        raise TransportError(
            f"HTTP {status} from {host} for {name}{hint}: {truncate(text, 300)}",
            system=SYSTEM, endpoint=name, status=status,
        )
    if text.startswith("response_error:"):
        log.warning("k3cloud %s: server exception: %s", name, truncate(text, 500))
        raise RetryableApiError(
            f"server exception: {truncate(text[len('response_error:'):].strip(), 500)}",
            system=SYSTEM, endpoint=name, code="response_error",
        )
    try:
        body = json.loads(text)
    except ValueError:
        error = OutcomeUnknownError if write else TransportError
        raise error(
            f"{host} answered {name} with a body that is not JSON (a proxy or login page?): {truncate(text, 300)}",
            system=SYSTEM, endpoint=name, status=status,
        ) from None
    waf = waf_block_message(body)
    if waf is not None:
        raise PermanentApiError(
            f"request blocked by the K3Cloud firewall: {waf} (remove '<' and script-like text from the data)",
            system=SYSTEM, endpoint=name,
        )
    return body
