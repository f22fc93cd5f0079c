"""Alert digests: once per failing run, no secrets, to Fxiaoke users (simulator) and a webhook (local server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from fxiaoke_k3cloud import alerts
from fxiaoke_k3cloud.audit import AuditStore, RecordOutcome
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

from .fill import SECRET, T0, StepClock

ADMIN = "FSUID_0000000000000000000000000000A001"
REP_A = "FSUID_0000000000000000000000000000A002"
REP_B = "FSUID_0000000000000000000000000000A003"
RUN_ID = "scheduled__2026-01-05T00:15:00+00:00"


class Webhook:
    """A group-chat robot on 127.0.0.1 that records what it is sent and answers like 企业微信."""

    def __init__(self, answer: dict[str, Any] | None = None, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 — http.server's name
                length = int(self.headers.get("Content-Length", 0))
                outer.bodies.append({"path": self.path, "json": json.loads(self.rfile.read(length))})
                payload = json.dumps(answer or {"errcode": 0, "errmsg": "ok"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=robot-key-123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    hook = Webhook()
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_ALERT_WEBHOOK",
                       json.dumps({"conn_type": "http", "extra": {"webhook_url": hook.url}}))
    yield hook
    hook.close()


@pytest.fixture
def failing_run(fxiaoke, tmp_path) -> Iterator[tuple[AuditStore, int, list[str]]]:  # type: ignore[no-untyped-def]
    """A partial customers run whose rejected records exist in the CRM simulator with known owners."""
    seeded = fxiaoke.seed({"objects": {"AccountObj": [
        {"name": "缺税号客户", "owner": [REP_A]},
        {"name": "另一个客户", "owner": [REP_A]},
        {"name": "第三个客户", "owner": [REP_B]},
    ]}})
    ids = seeded["ids"]["AccountObj"]
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}", clock=StepClock())
    store.migrate()
    run_pk = store.start_run("customers", RUN_ID, "scheduled", T0, T0 + timedelta(minutes=15))
    store.record_outcomes(run_pk, [
        RecordOutcome(flow="customers", entity="customer", source_id=ids[0], source_name="缺税号客户",
                      outcome="rejected", reason="tax_id is required (FTAXREGISTERCODE)"),
        RecordOutcome(flow="customers", entity="customer", source_id=ids[1], source_name="另一个客户",
                      outcome="rejected", reason=f"bad phone; token: {SECRET}"),
        RecordOutcome(flow="customers", entity="customer", source_id=ids[2], source_name="第三个客户",
                      outcome="rejected", reason="customer type 'VIP+' has no K3 value"),
        RecordOutcome(flow="customers", entity="customer", source_id="x-failed", source_name="f",
                      outcome="failed", reason=f"K3Cloud error, password={SECRET}"),
        RecordOutcome(flow="customers", entity="customer", source_id="x-ok", outcome="created"),
    ])
    store.finish_run(run_pk, "partial", {"extracted": 5, "created": 1, "rejected": 3, "failed": 1},
                     "4 record(s) rejected or failed")
    yield store, run_pk, ids
    store.dispose()


def messages(sim) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return sim._admin("GET", "messages")


def test_digest_is_sent_once_per_run_and_holds_no_secret(fxiaoke, failing_run, webhook) -> None:  # type: ignore[no-untyped-def]
    store, run_pk, _ = failing_run
    url = "http://airflow.example.com/dags/fxiaoke_customers_to_k3cloud/runs/x/tasks/report"
    first = alerts.send_run_digest("customers", run_pk, url, store=store, fxiaoke_hook=FxiaokeHook(),
                                   webhook_conn_id="sync_alert_webhook", to_users=[ADMIN])
    assert first.sent and first.webhook and first.recipients == [ADMIN] and first.errors == []
    again = alerts.send_run_digest("customers", run_pk, url, store=store, fxiaoke_hook=FxiaokeHook(),
                                   webhook_conn_id="sync_alert_webhook", to_users=[ADMIN])
    assert not again.sent and again.detail == "already sent"

    digests = [m for m in messages(fxiaoke) if m["toUser"] == [ADMIN]]
    assert len(digests) == 1
    text = digests[0]["text"]["content"]
    assert "customers: run partial" in text
    assert "Window (UTC): 2026-01-05 00:00 → 00:15" in text
    assert "extracted 5, created 1, rejected 3, failed 1" in text
    assert "1 × rejected: tax_id is required (FTAXREGISTERCODE)" in text
    assert f"Details: {url}" in text
    assert len(webhook.bodies) == 1
    body = webhook.bodies[0]["json"]
    assert body["msgtype"] == "text" and body["text"]["content"] == text
    everything = json.dumps(messages(fxiaoke), ensure_ascii=False) + json.dumps(webhook.bodies, ensure_ascii=False)
    assert SECRET not in everything
    assert "robot-key-123" not in text


def test_owners_of_rejected_records_are_told_what_to_fix(fxiaoke, failing_run) -> None:  # type: ignore[no-untyped-def]
    store, run_pk, ids = failing_run
    result = alerts.send_run_digest("customers", run_pk, store=store, fxiaoke_hook=FxiaokeHook(),
                                    webhook_conn_id="", to_users=[ADMIN])
    assert result.owners_notified == 2
    by_user = {m["toUser"][0]: m["text"]["content"] for m in messages(fxiaoke) if m["toUser"] != [ADMIN]}
    assert set(by_user) == {REP_A, REP_B}
    assert f"缺税号客户 ({ids[0]}): tax_id is required (FTAXREGISTERCODE)" in by_user[REP_A]
    assert f"另一个客户 ({ids[1]}): bad phone; token: ***" in by_user[REP_A]
    assert f"第三个客户 ({ids[2]}): customer type 'VIP+' has no K3 value" in by_user[REP_B]
    assert "x-failed" not in by_user[REP_A] + by_user[REP_B]  # failures are ours to fix, not the owner's


def test_nothing_configured_sends_nothing_and_marks_nothing(fxiaoke, failing_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(alerts.USERS_SETTING, raising=False)
    monkeypatch.delenv(alerts.WEBHOOK_SETTING, raising=False)
    store, run_pk, _ = failing_run
    result = alerts.send_run_digest("customers", run_pk, store=store, fxiaoke_hook=FxiaokeHook(), notify_owners=False)
    assert not result.sent and "SYNC_ALERT_OPEN_USER_IDS" in result.detail
    assert messages(fxiaoke) == []
    assert not alerts.digest_already_sent(store, "customers", RUN_ID)


def test_refused_webhook_is_reported_and_a_retry_sends_again(fxiaoke, failing_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    refusing = Webhook(answer={"errcode": 93000, "errmsg": "invalid webhook url"})
    monkeypatch.setenv("AIRFLOW_CONN_REFUSING", json.dumps({"conn_type": "http", "host": refusing.url}))
    store, run_pk, _ = failing_run
    try:
        result = alerts.send_run_digest("customers", run_pk, store=store, webhook_conn_id="refusing",
                                        to_users=[], notify_owners=False)
        assert not result.sent
        assert "refused the message: invalid webhook url" in result.errors[0]
        assert "robot-key-123" not in result.errors[0]
        assert len(refusing.bodies) == 1
        # Not marked as sent: the next attempt tries again.
        alerts.send_run_digest("customers", run_pk, store=store, webhook_conn_id="refusing", to_users=[],
                               notify_owners=False)
        assert len(refusing.bodies) == 2
    finally:
        refusing.close()


def test_on_report_failure_reads_settings_and_finds_the_run(fxiaoke, failing_run, webhook, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store, run_pk, _ = failing_run
    monkeypatch.setenv("SYNC_AUDIT_URL", store._url)
    monkeypatch.setenv(alerts.USERS_SETTING, f"{ADMIN}, {ADMIN}")
    monkeypatch.setenv(alerts.WEBHOOK_SETTING, "sync_alert_webhook")
    ti = SimpleNamespace(
        dag_id="fxiaoke_customers_to_k3cloud",
        log_url="http://localhost:8080/dags/fxiaoke_customers_to_k3cloud/runs/r/tasks/report",
        xcom_pull=lambda task_ids: {"run_pk": run_pk} if task_ids == "extract_customers" else None,
    )
    for _ in range(2):  # a retried callback
        alerts.on_report_failure({"ti": ti, "dag_run": SimpleNamespace(run_id=RUN_ID)})
    digests = [m for m in messages(fxiaoke) if m["toUser"] == [ADMIN]]
    assert len(digests) == 1 and len(webhook.bodies) == 1
    assert ti.log_url in digests[0]["text"]["content"]


def test_on_report_failure_never_raises(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNC_AUDIT_URL", "postgresql://u:p@127.0.0.1:1/x")
    ti = SimpleNamespace(dag_id="fxiaoke_customers_to_k3cloud", log_url=None, xcom_pull=lambda task_ids: {"run_pk": 1})
    alerts.on_report_failure({"ti": ti})  # unreachable store: logged, not raised
    alerts.on_report_failure({"ti": SimpleNamespace(dag_id="some_other_dag")})
