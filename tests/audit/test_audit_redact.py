"""redact(): secrets masked by key name, in free text and inside JSON strings; long strings truncated."""

from __future__ import annotations

import json

import pytest

from fxiaoke_k3cloud.audit import redact
from fxiaoke_k3cloud.audit.redact import MASK, excerpt, is_sensitive_key, scrub_text


@pytest.mark.parametrize(
    "key",
    [
        "password", "Password", "corpAccessToken", "access_token", "appSecret", "app_secret", "permanentCode",
        "permanent_code", "kdservice-sessionid", "ASP.NET_SessionId", "session_id", "X-Api-Signature",
        "Authorization", "Set-Cookie", "cookie", "client_secret",
    ],
)
def test_sensitive_key_names_match_in_any_case_and_separator(key: str) -> None:
    assert is_sensitive_key(key)
    assert redact({key: "value-that-leaks"}) == {key: MASK}


@pytest.mark.parametrize("key", ["name", "FNumber", "corpId", "openUserId", "dataObjectApiName", "session"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert not is_sensitive_key(key)
    assert redact({key: "v"}) == {key: "v"}


def test_nested_structures_are_redacted_without_touching_the_input() -> None:
    original = {
        "data": {"permanentCode": "PC", "items": [{"Password": "p", "qty": 2}, ("ok", {"token": "t"})]},
        "ids": {1, 2},
    }
    out = redact(original)
    assert out["data"]["permanentCode"] == MASK
    assert out["data"]["items"][0] == {"Password": MASK, "qty": 2}
    assert out["data"]["items"][1] == ["ok", {"token": MASK}]
    assert sorted(out["ids"]) == [1, 2]
    assert original["data"]["permanentCode"] == "PC"


def test_json_nested_inside_a_string_is_redacted() -> None:
    # K3Cloud's wire format: the business payload is a JSON string inside the JSON body.
    body = {"parameters": ["BD_Customer", json.dumps({"Model": {"FName": "客户A"}, "appSecret": "s3"})]}
    out = redact(body)
    inner = json.loads(out["parameters"][1])
    assert inner == {"Model": {"FName": "客户A"}, "appSecret": MASK}


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("GET /x?access_token=AbCdEf123&page=2", "AbCdEf123"),
        ('{"password": "hunter22", "user": "u"}', "hunter22"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "eyJhbGciOiJIUzI1NiJ9"),
        ("kdservice-sessionid=abc123def; path=/", "abc123def"),
        ("login failed for permanentCode=XYZPERMANENT", "XYZPERMANENT"),
    ],
)
def test_free_text_is_scrubbed(text: str, leak: str) -> None:
    scrubbed = scrub_text(text)
    assert leak not in scrubbed
    assert MASK in scrubbed
    assert leak not in redact({"message": text})["message"]


def test_long_strings_and_excerpts_are_truncated() -> None:
    out = redact({"note": "x" * 5000}, max_string=100)
    assert out["note"].startswith("x" * 100)
    assert "truncated 4900 chars" in out["note"]
    text = excerpt({"rows": ["y" * 900 for _ in range(20)]}, limit=2048)
    assert text is not None and len(text) < 2100 and "truncated" in text


def test_scalars_bytes_and_other_objects() -> None:
    assert redact(None) is None
    assert redact(5) == 5 and redact(True) is True and redact(1.5) == 1.5
    assert redact(b'{"token": "t", "a": 1}') == '{"token": "***", "a": 1}'
    assert redact(ValueError("bad password=abc")) == "bad password=***"
    assert excerpt(None) is None


def test_huge_values_are_cut_before_they_are_scrubbed() -> None:
    # A multi-megabyte body (base64 attachment) must cost no more than max_string characters.
    out = redact({"attachment": "QUJD" * 2_000_000, "note": "token=" + "x" * 3_000_000})
    assert len(out["attachment"]) < 1100 and "truncated" in out["attachment"]
    assert out["note"].startswith("token=***")
