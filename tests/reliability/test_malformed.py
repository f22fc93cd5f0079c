"""Malformed API answers: HTML error pages, truncated JSON, JSON in the wrong envelope, empty bodies — from both APIs.

A small rewriting proxy on 127.0.0.1 is the connection host. It forwards every request to the simulator, except
the requests of one chosen endpoint, which it either answers itself (the request never reaches the simulator)
or forwards and then spoils the simulator's answer (the write IS applied, the client cannot tell). Expected:
a task error naming the host and what was wrong, reads retried only where the hook's policy says so, no
half-written data (a spoiled answer to a write is read back by number, never blindly replayed), and failures
audited with their reason.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
import requests
import sqlalchemy as sa

from simproc import fxiaoke_conn, k3cloud_conn

from .runner import CUSTOMERS, FakeTI, Scheduler, fast_backoff
from .verify import GOOD, final_outcomes

NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
             b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>...</form></body></html>"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class Spoil:
    """What the proxy does to requests whose path contains ``path``.

    ``forward``: send the request on first (a write is applied), then answer ``body``/``status`` instead of the
    simulator's answer; ``truncate``: forward and answer the simulator's own body cut to that many bytes.
    """

    path: str
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html"
    forward: bool = False
    truncate: int | None = None


class SpoilingProxy:
    """A threaded HTTP proxy for one upstream; counts requests per path and spoiled answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.spoil: Spoil | None = None
        self.hits: Counter = Counter()
        self.spoiled = 0
        self.http = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                proxy.handle(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host = self.url.removeprefix("http://")
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        path = h.path.split("?", 1)[0]
        self.hits[path] += 1
        rule = self.spoil if self.spoil and self.spoil.path.lower() in path.lower() else None
        upstream = None
        if rule is None or rule.forward or rule.truncate is not None:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_HEADERS}
            upstream = self.http.request(h.command, self.upstream + h.path, data=body, headers=headers, timeout=60)
        if rule is None:
            assert upstream is not None
            status, payload = upstream.status_code, upstream.content
            headers = [(k, v) for k, v in upstream.raw.headers.items() if k.lower() not in HOP_HEADERS]
        else:
            self.spoiled += 1
            if rule.truncate is not None:
                assert upstream is not None
                status, payload = upstream.status_code, upstream.content[: rule.truncate]
                headers = [("Content-Type", upstream.headers.get("Content-Type", "application/json"))]
            else:
                status, payload, headers = rule.status, rule.body, [("Content-Type", rule.content_type)]
        h.send_response(status)
        for key, value in headers:
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def count(self, fragment: str) -> int:
        return sum(n for p, n in self.hits.items() if fragment.lower() in p.lower())


@pytest.fixture
def proxies(chaos_world, monkeypatch) -> Iterator[SimpleNamespace]:
    """Both connections through a spoiling proxy; hooks retry without waiting (caps at 20 ms)."""
    fx, k3 = SpoilingProxy(chaos_world.fx.base_url), SpoilingProxy(chaos_world.k3.base_url)
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(SimpleNamespace(base_url=fx.url), timeout=5))
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(SimpleNamespace(base_url=k3.url), timeout=5))
    try:
        with fast_backoff():
            yield SimpleNamespace(fx=fx, k3=k3, world=chaos_world)
    finally:
        fx.close(), k3.close()


def _context(run_id: str) -> dict[str, Any]:
    return {"params": {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False},
            "dag_run": SimpleNamespace(run_id=run_id, run_type="manual", run_after=datetime.now(timezone.utc)),
            "ti": FakeTI()}


# (id, spoiled answer, retried by the hook's read policy, what the error must say)
MALFORMED_READS = [
    ("nginx 502 page, HTTP 502", Spoil("", NGINX_502, 502), True, r"502"),
    ("nginx 502 page, HTTP 200", Spoil("", NGINX_502, 200), False, r"HTML|not JSON|not a JSON"),
    ("login page, HTTP 200", Spoil("", LOGIN_PAGE, 200), False, r"HTML|not JSON|not a JSON"),
    ("truncated JSON", Spoil("", truncate=40), False, r"JSON"),
    ("empty body", Spoil("", b"", 200, "application/json"), False, r"JSON|empty"),
]
CRM_WRONG_ENVELOPES = [
    ("JSON without errorCode", Spoil("", b'{"data": {"dataList": [], "total": 0}}', 200, "application/json"), False,
     r"JSON envelope|errorCode"),
    ("JSON array", Spoil("", b"[]", 200, "application/json"), False, r"JSON envelope"),
    pytest.param("errorCode 0 without data", Spoil("", b'{"errorCode": 0, "errorMessage": "OK"}', 200,
                                                   "application/json"), False, r"data",
                 id="errorCode 0 without data"),
]
K3_WRONG_ENVELOPES = [
    pytest.param("JSON without LoginResultType", Spoil("", b'{"Message": "ok"}', 200, "application/json"), False,
                 r"LoginResultType", id="JSON without LoginResultType"),
]


def _ids(cases: list[Any]) -> list[str | None]:
    return [None if isinstance(c, type(pytest.param())) else c[0] for c in cases]


def _spoil_at(case: Spoil, path: str) -> Spoil:
    return Spoil(path, case.body, case.status, case.content_type, case.forward, case.truncate)


@pytest.mark.parametrize("name,spoil,retried,says", MALFORMED_READS + CRM_WRONG_ENVELOPES,
                         ids=_ids(MALFORMED_READS + CRM_WRONG_ENVELOPES))
def test_malformed_crm_query_answer_fails_extract_naming_the_host(proxies, name, spoil, retried, says):
    from fxiaoke_k3cloud.errors import SyncError
    from fxiaoke_k3cloud.flows import steps
    from fxiaoke_k3cloud.hooks.fxiaoke import MAX_ATTEMPTS

    proxies.world.fx.seed({"demo": 5})
    proxies.fx.spoil = _spoil_at(spoil, "/cgi/crm/v2/data/query")
    with pytest.raises(SyncError) as caught:
        steps.extract(CUSTOMERS, _context("manual__malformed_crm"))
    message = str(caught.value)
    assert proxies.fx.host in message, f"the error must name the host: {message}"
    assert re.search(says, message), message
    assert proxies.fx.count("/cgi/crm/v2/data/query") == (MAX_ATTEMPTS if retried else 1), proxies.fx.hits
    assert proxies.world.store.get_watermark(CUSTOMERS) is None


@pytest.mark.parametrize("name,spoil,retried,says", MALFORMED_READS + K3_WRONG_ENVELOPES,
                         ids=_ids(MALFORMED_READS + K3_WRONG_ENVELOPES))
def test_malformed_k3cloud_login_answer_fails_the_records_naming_the_host(proxies, name, spoil, retried, says):
    """The K3Cloud login happens inside the first BatchSave: its records are audited failed with the reason."""
    from fxiaoke_k3cloud.audit.schema import sync_record
    from fxiaoke_k3cloud.hooks.k3cloud_transport import RETRY_MAX_ATTEMPTS

    world, size = proxies.world, 5
    world.fx.seed({"demo": size})
    proxies.k3.spoil = _spoil_at(spoil, "ValidateUser")
    scheduler = Scheduler(task_retries=0, max_runs=1)
    assert not scheduler.run_once(CUSTOMERS), "failed records make the report red"
    assert proxies.k3.count("ValidateUser") == (RETRY_MAX_ATTEMPTS if retried else 1), proxies.k3.hits
    assert proxies.k3.count("BatchSave") == 0 and world.k3.records("BD_Customer") == []
    outcomes = Counter(final_outcomes(world.store, CUSTOMERS).values())
    if name == "JSON without LoginResultType":
        # An answer that is not a K3Cloud login at all is a set-up error (wrong base URL): the load step fails once,
        # with no retries and no per-record failures (issue 18); its message names the host (the task's log).
        errors = scheduler.stats[CUSTOMERS].errors
        assert outcomes == Counter() and errors["load_customers: AuthenticationError"] == 1, errors
        return
    assert outcomes == {"failed": size}
    with world.store.engine.connect() as conn:
        reasons = {r for (r,) in conn.execute(sa.select(sync_record.c.reason).distinct())}
    assert len(reasons) == 1, reasons
    reason = reasons.pop()
    assert proxies.k3.host in reason, f"the reason must name the host: {reason}"
    assert re.search(says, reason), reason


# Spoiled answers to BatchSave *after* the simulator applied it: the loader must read back, never duplicate.
APPLIED_WRITES = [
    ("truncated JSON", Spoil("", truncate=60, forward=True)),
    ("nginx 502 page, HTTP 502", Spoil("", NGINX_502, 502, forward=True)),
    ("nginx 502 page, HTTP 200", Spoil("", NGINX_502, 200, forward=True)),
    ("empty body", Spoil("", b"", 200, "application/json", forward=True)),
]


@pytest.mark.parametrize("name,spoil", APPLIED_WRITES, ids=[c[0] for c in APPLIED_WRITES])
def test_spoiled_answer_to_an_applied_batchsave_is_read_back_and_created_once(proxies, name, spoil):
    world, size = proxies.world, 60
    world.fx.seed({"demo": size})
    proxies.k3.spoil = _spoil_at(spoil, "BatchSave")
    assert Scheduler(task_retries=0, max_runs=1).run_once(CUSTOMERS), "read-back resolves every chunk: green run"
    assert proxies.k3.spoiled == proxies.k3.count("BatchSave") == 2, "one BatchSave per 50 customers, none replayed"
    numbers = Counter(c["FNumber"] for c in world.k3.records("BD_Customer"))
    assert len(numbers) == size and set(numbers.values()) == {1}
    finals = final_outcomes(world.store, CUSTOMERS)
    assert Counter(finals.values()) == {"created": size}
    assert _reasons(world.store) == {"write timed out; found in K3Cloud by number on read-back"}


def test_batchsave_answer_in_the_wrong_envelope_is_not_taken_for_success(proxies):
    world, size = proxies.world, 10
    world.fx.seed({"demo": size})
    proxies.k3.spoil = Spoil("BatchSave", b'{"Message": "ok"}', 200, "application/json")  # never reaches K3Cloud
    Scheduler(task_retries=0, max_runs=1).run_once(CUSTOMERS)
    assert world.k3.records("BD_Customer") == []
    finals = final_outcomes(world.store, CUSTOMERS)
    assert not [i for i, o in finals.items() if o in GOOD], f"audited as written although nothing was: {finals}"


def test_garbage_answer_to_an_unapplied_batchsave_is_audited_failed_then_created_once(proxies):
    from fxiaoke_k3cloud.audit.schema import sync_record

    world, size = proxies.world, 10
    world.fx.seed({"demo": size})
    proxies.k3.spoil = Spoil("BatchSave", LOGIN_PAGE, 200)  # a captive portal: nothing reaches K3Cloud
    assert not Scheduler(task_retries=0, max_runs=1).run_once(CUSTOMERS), "failed records make the report red"
    assert world.k3.records("BD_Customer") == []
    assert proxies.k3.count("BatchSave") == 2, "read back, found nothing, sent once more, then gave up"
    assert Counter(final_outcomes(world.store, CUSTOMERS).values()) == {"failed": size}
    with world.store.engine.connect() as conn:
        rows = conn.execute(sa.select(sync_record.c.reason, sync_record.c.error_class)
                            .where(sync_record.c.outcome == "failed")).fetchall()
    assert len(rows) == size and all(r.reason and r.error_class == "OutcomeUnknownError" for r in rows), rows[:2]
    assert world.store.get_watermark(CUSTOMERS) is not None  # failed records are retried by id, not by window

    proxies.k3.spoil = None
    assert Scheduler(task_retries=0, max_runs=1).run_once(CUSTOMERS)
    numbers = Counter(c["FNumber"] for c in world.k3.records("BD_Customer"))
    assert len(numbers) == size and set(numbers.values()) == {1}
    assert Counter(final_outcomes(world.store, CUSTOMERS).values()) == {"created": size}


def _reasons(store: Any) -> set[str]:
    from fxiaoke_k3cloud.audit.schema import sync_record

    with store.engine.connect() as conn:
        return {r for (r,) in conn.execute(sa.select(sync_record.c.reason).distinct())}


# CRM writes (the deliveries flow creates DeliveryNoteObj this way): a spoiled answer to an applied create.
def _create_account(name: str) -> Any:
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

    return FxiaokeHook(retry_wait_s=0).create_record("AccountObj", {"name": name})


def test_crm_create_answered_with_a_502_page_after_applying_is_outcome_unknown(proxies):
    from fxiaoke_k3cloud.errors import OutcomeUnknownError

    proxies.fx.spoil = Spoil("/cgi/crm/v2/data/create", NGINX_502, 502, forward=True)
    with pytest.raises(OutcomeUnknownError) as caught:
        _create_account("malformed-502")
    assert proxies.fx.host in str(caught.value)
    assert proxies.fx.count("/cgi/crm/v2/data/create") == 1, "never replayed"
    assert [a["name"] for a in proxies.world.fx.records("AccountObj")].count("malformed-502") == 1


def test_crm_create_answered_with_truncated_json_after_applying_is_outcome_unknown(proxies):
    from fxiaoke_k3cloud.errors import OutcomeUnknownError

    proxies.fx.spoil = Spoil("/cgi/crm/v2/data/create", truncate=20, forward=True)
    with pytest.raises(OutcomeUnknownError):
        _create_account("malformed-truncated")
    assert [a["name"] for a in proxies.world.fx.records("AccountObj")].count("malformed-truncated") == 1
