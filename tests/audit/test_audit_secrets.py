"""Secrets handed to the store in requests, responses, reasons or messages never reach the database."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import AuditStore, RecordOutcome

SECRETS = {
    "password": "Pw-never-stored-1",
    "corpAccessToken": "TOKEN-never-stored-2",
    "permanentCode": "PERMCODE-never-stored-3",
    "appSecret": "APPSECRET-never-stored-4",
    "kdservice-sessionid": "SESSION-never-stored-5",
    "signature": "SIG-never-stored-6",
}


def _raw_text(store: AuditStore) -> str:
    """Every row of every table as the database renders it."""
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in ("sync_run", "sync_record", "id_map", "watermark", "parked"):
            if store.dialect == "postgresql":
                rows = conn.execute(sa.text(f"SELECT t::text FROM {table} t")).scalars()
                parts.extend(rows)
            else:
                parts.extend(repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}")))
    return "\n".join(parts)


def test_nested_secrets_never_reach_the_database(store: AuditStore, store_url: str) -> None:
    run = store.start_run("customers", "r", "manual", datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc))
    request = {
        "headers": {"Cookie": f"kdservice-sessionid={SECRETS['kdservice-sessionid']}", "X-Api-Signature": SECRETS["signature"]},
        "body": {
            "corpAccessToken": SECRETS["corpAccessToken"],
            "data": {"object_data": {"name": "客户A", "auth": [{"password": SECRETS["password"]}]}},
        },
        # K3Cloud style: JSON inside a string.
        "parameters": ["BD_Customer", json.dumps({"Model": {"FName": "A"}, "appSecret": SECRETS["appSecret"]})],
    }
    response = {"errorCode": 0, "echo": {"permanentCode": SECRETS["permanentCode"]}}
    store.record_outcomes(
        run,
        [
            RecordOutcome(
                flow="customers",
                entity="customer",
                source_id="a1",
                outcome="failed",
                reason=f"login failed: password={SECRETS['password']}",
                request=request,
                response=response,
            )
        ],
    )
    store.park("order", "orders", [("o1", f"token={SECRETS['corpAccessToken']}", "customer:a1")])
    store.finish_run(run, "failed", {"failed": 1}, f"permanentCode={SECRETS['permanentCode']} rejected")

    text = _raw_text(store)
    assert "客户A" in text and "***" in text  # the excerpt is there, only the secrets are masked
    for secret in SECRETS.values():
        assert secret not in text
    if store.dialect == "sqlite":
        store.dispose()
        db = Path(store_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        for secret in SECRETS.values():
            assert secret.encode() not in raw
