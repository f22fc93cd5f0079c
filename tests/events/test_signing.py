"""The push signature: the receiver's verifier accepts what the documented algorithm (and the simulator's
stand-in sender) produces, refuses tampering and stale timestamps, and remembers replays for the window only."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.events.signing import SignatureError, Verifier, sign
from simulators.k3cloud.outbound import signed_headers

BODY = b'{"form_id":"SAL_DELIVERYNOTICE","operation":"Audit","numbers":["FHTZD000001"]}'


def test_simulator_sender_and_receiver_agree_on_the_algorithm():
    headers = signed_headers("s3cret", BODY, timestamp=1_800_000_000)
    assert headers["X-Sync-Signature"] == sign("s3cret", 1_800_000_000, BODY)
    assert Verifier().verify("s3cret", headers["X-Sync-Timestamp"], headers["X-Sync-Signature"], BODY, now=1_800_000_010)


@pytest.mark.parametrize("ts, sig, body, message", [
    ("1800000000", sign("other", 1_800_000_000, BODY), BODY, "does not match"),
    ("1800000000", sign("s3cret", 1_800_000_000, BODY), BODY + b" ", "does not match"),
    ("1800000001", sign("s3cret", 1_800_000_000, BODY), BODY, "does not match"),
    ("1799999000", sign("s3cret", 1_799_999_000, BODY), BODY, "300 s"),
    ("soon", "sha256=00", BODY, "unix seconds"),
    (None, None, BODY, "missing"),
])
def test_refusals_say_why_without_the_expected_signature(ts, sig, body, message):
    with pytest.raises(SignatureError, match=message) as info:
        Verifier().verify("s3cret", ts, sig, body, now=1_800_000_000)
    assert sign("s3cret", ts or 0, body) not in str(info.value)


def test_replay_is_recognised_inside_the_window_and_forgotten_after():
    verifier = Verifier(window_s=300)
    sig = sign("s3cret", 1_800_000_000, BODY)
    assert verifier.verify("s3cret", "1800000000", sig, BODY, now=1_800_000_000) is True
    assert verifier.verify("s3cret", "1800000000", sig, BODY, now=1_800_000_100) is False
    other = sign("s3cret", 1_800_000_299, BODY)
    assert verifier.verify("s3cret", "1800000299", other, BODY, now=1_800_000_350) is True  # prunes the first
    assert sig not in verifier._seen
    with pytest.raises(SignatureError):  # the first one is now stale anyway
        verifier.verify("s3cret", "1800000000", sig, BODY, now=1_800_000_350)
