"""Signed pushes: HMAC-SHA256 over ``<timestamp>.<body>`` with a shared secret, a replay window, and a
memory of signatures already accepted (pure; used by the receiver and by the simulator's stand-in sender
through the same documented algorithm).

Headers of a push::

    X-Sync-Timestamp: 1764700000            (unix seconds, the sender's clock)
    X-Sync-Signature: sha256=<hex HMAC-SHA256(secret, "1764700000." + raw body bytes)>
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict

TIMESTAMP_HEADER = "X-Sync-Timestamp"
SIGNATURE_HEADER = "X-Sync-Signature"
REPLAY_WINDOW_S = 300  # a push older or newer than this is refused (clock skew included)


class SignatureError(Exception):
    """A push that is not authentic or not fresh; the message says which (never the expected signature)."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Verifier:
    """Checks pushes; remembers accepted signatures for the replay window so an exact replay is recognised."""

    def __init__(self, *, window_s: int = REPLAY_WINDOW_S, memory: int = 10_000) -> None:
        self.window_s = window_s
        self.memory = memory
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, secret: str, timestamp: str | None, signature: str | None, body: bytes, *, now: float | None = None) -> bool:
        """True for a fresh authentic push, False for a replay of one already accepted.

        :raises SignatureError: missing headers, a stale or future timestamp, or a wrong signature.
        """
        if not timestamp or not signature:
            raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
        try:
            sent = int(timestamp)
        except ValueError:
            raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds") from None
        now = time.time() if now is None else now
        if abs(now - sent) > self.window_s:
            raise SignatureError(f"{TIMESTAMP_HEADER} is more than {self.window_s} s from the receiver's clock")
        if not hmac.compare_digest(sign(secret, sent, body).encode("ascii"), signature.strip().encode("ascii", "replace")):
            raise SignatureError("signature does not match the body and timestamp")
        with self._lock:
            for key, at in list(self._seen.items()):
                if now - at <= self.window_s and len(self._seen) <= self.memory:
                    break
                del self._seen[key]
            if signature in self._seen:
                return False
            self._seen[signature] = now
        return True
