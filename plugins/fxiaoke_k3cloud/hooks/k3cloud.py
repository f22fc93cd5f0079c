"""K3CloudHook: the Kingdee K3Cloud (金蝶云星空) Web API as domain verbs for Airflow tasks.

The request path (timeouts, session, retries, error mapping) lives in ``k3cloud_transport``; result types in
``k3cloud_response``; FilterStrings are built only with ``k3cloud_filter.F``; form keys and paging order in
``k3cloud_query``; the read verbs (View, bill queries, find by number) in ``k3cloud_reads``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any

from airflow.sdk import BaseHook

from fxiaoke_k3cloud.errors import ConfigError, OutcomeUnknownError, what_to_fix
from fxiaoke_k3cloud.hooks._http import HttpSettings, mask_secrets, truncate
from fxiaoke_k3cloud.hooks.k3cloud_auth import K3Credentials
from fxiaoke_k3cloud.hooks.k3cloud_filter import F
from fxiaoke_k3cloud.hooks.k3cloud_reads import K3CloudReads
from fxiaoke_k3cloud.hooks.k3cloud_session import SharedSession, reuse_seconds
from fxiaoke_k3cloud.hooks.k3cloud_options import (
    BATCH_SAVE_OPTIONS,
    OP_NUMBER_RE,
    OPERATION_OPTIONS,
    PUSH_OPTIONS,
    SAVE_OPTIONS,
    STATE_OPTIONS,
    check_options,
    ids_or_numbers,
)
from fxiaoke_k3cloud.hooks.k3cloud_response import (
    MSG_LOCK_CONFLICT,
    SYSTEM,
    BatchRowOutcome,
    OperationResult,
    PushResult,
    SaveResult,
    batch_outcomes,
    errors_of,
    response_status,
    success_entities,
    success_messages,
)
from fxiaoke_k3cloud.hooks.k3cloud_transport import (
    RETRY_INITIAL_WAIT_S,
    RETRY_MAX_ATTEMPTS,
    K3CloudClient,
    max_in_flight_from_extra,
)

class K3CloudHook(K3CloudReads, BaseHook):
    """Talks to the Kingdee K3Cloud Web API with session login or the official SDK's signed headers.

    Connection (conn type ``k3cloud``, default id ``k3cloud_default``):

    - ``host``: the base URL ending in ``/k3cloud/``, e.g. ``https://tenant.ik3cloud.com/k3cloud/``;
    - ``login``: the integration user name; ``password``: its password (auth_mode ``password``);
    - extra ``acct_id``: data-center (账套) id, required;
    - extra ``auth_mode``: ``password`` (ValidateUser, default), ``app_secret`` (LoginByAppSecret) or ``signed``
      (the official SDK's stateless X-Api-*/X-Kd-* headers; no login call);
    - extras ``app_id`` / ``app_secret``: 第三方系统登录授权 app (``<clientid>_<32 chars>``), for app_secret and signed;
    - extra ``lcid``: 2052 zh-CN (default), 1033 en-US, 3076 zh-TW — the language of messages;
    - extra ``org_number``: organisation number sent in signed mode (default ``0``);
    - extras ``timeout`` (read timeout, s; default 60, connect 10), ``verify_ssl`` (default true),
      ``ca_bundle`` (PEM file for a private CA);
    - extra ``max_in_flight``: K3Cloud write requests a load sends at once (default 4, 1–32); a load never sends
      more than its task's slots in the ``k3cloud_api`` pool either.

    The password, app secret and session ids are registered with Airflow's log masker and never logged.

    Thread-safe: the writer threads of a load share one hook, one client and one server session; a lost session
    is re-opened by one login, whichever threads noticed it (see ``k3cloud_transport``).

    One server session per hook in every auth mode (signed mode replays the ``kdservice-sessionid`` cookie like
    the official SDK). Use it as a context manager, or call ``close()``, so the session is logged out when the
    task is done: ``with K3CloudHook() as k3: ...``.

    :param k3cloud_conn_id: the Airflow connection id.
    :param max_attempts: attempts per call for the retryable cases (1 = no retry).
    :param retry_wait_s: base of the capped exponential backoff with jitter; 0 retries immediately (tests).
    """

    conn_name_attr = "k3cloud_conn_id"
    default_conn_name = "k3cloud_default"
    conn_type = "k3cloud"
    hook_name = "Kingdee K3Cloud (金蝶云星空)"

    def __init__(
        self,
        k3cloud_conn_id: str = default_conn_name,
        *,
        max_attempts: int = RETRY_MAX_ATTEMPTS,
        retry_wait_s: float = RETRY_INITIAL_WAIT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.k3cloud_conn_id = k3cloud_conn_id
        self.max_attempts = max_attempts
        self.retry_wait_s = retry_wait_s
        self._client: K3CloudClient | None = None
        self._client_lock = threading.Lock()

    # --- connection ---------------------------------------------------------------------------------------
    @property
    def client(self) -> K3CloudClient:
        """The HTTP client, built on first use from the Airflow connection (once, whichever thread asks first)."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._build_client()
                client = self._client
        return client

    @property
    def max_in_flight(self) -> int:
        """Requests a load may have in flight at once on this connection (extra ``max_in_flight``, default 4)."""
        return self.client.max_in_flight

    def _build_client(self) -> K3CloudClient:
        conn = self.get_connection(self.k3cloud_conn_id)
        extra = conn.extra_dejson
        # acct_id too: SENSITIVE_VAR_CONN_NAMES masks it in the UI; the data-center id must not leak to logs either.
        mask_secrets(conn.password, extra.get("app_secret"), extra.get("acct_id"))
        host = (conn.host or "").strip()
        if not host.startswith(("http://", "https://")):
            raise ConfigError(
                f"k3cloud connection {self.k3cloud_conn_id!r}: host must be the full base URL, "
                f"e.g. https://tenant.ik3cloud.com/k3cloud/ (got {host!r})"
            )
        try:
            lcid = int(extra.get("lcid") or 2052)
        except (TypeError, ValueError):
            raise ConfigError(f"k3cloud connection extra 'lcid' must be an integer, got {extra.get('lcid')!r}") from None
        creds = K3Credentials(
            base_url=host if host.endswith("/") else host + "/",
            acct_id=str(extra.get("acct_id") or ""),
            username=conn.login or "",
            auth_mode=str(extra.get("auth_mode") or "password"),
            password=conn.password or "",
            app_id=str(extra.get("app_id") or ""),
            app_secret=str(extra.get("app_secret") or ""),
            lcid=lcid,
            org_number=str(extra.get("org_number") or "0"),
        )
        shared = SharedSession.for_deployment(creds.base_url, creds.acct_id, creds.username, creds.auth_mode,
                                              reuse_seconds(extra, self.k3cloud_conn_id))
        return K3CloudClient(
            creds, HttpSettings.from_extra(extra),
            max_attempts=self.max_attempts, retry_wait_s=self.retry_wait_s, log=self.log,
            max_in_flight=max_in_flight_from_extra(extra, self.k3cloud_conn_id), shared=shared,
        )

    def get_conn(self) -> K3CloudClient:
        return self.client

    def close(self) -> None:
        """Log out of the server session (if one was opened) and close the HTTP session; safe to call twice.

        Every task that talks to K3Cloud calls this when it is done (also on failure), so a task costs one
        login and gives its session back instead of leaving it to the server's idle timeout — unless the
        deployment shares one session across tasks and runs (:mod:`.k3cloud_session`): that one is kept.
        """
        with self._client_lock:
            client, self._client = self._client, None  # never built: nothing to log out of
        if client is not None:
            client.close()

    def __enter__(self) -> "K3CloudHook":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """Log in and run the SDK's CheckAuthInfo query (BD_Currency PRE001 must be CNY)."""
        try:
            rows = next(self.execute_bill_query("BD_Currency", ["FCODE"], F("FNUMBER") == "PRE001", page_size=1), [])
        except Exception as exc:  # the UI shows the message: what failed and what to fix
            self.close()
            return False, what_to_fix(exc, system="K3Cloud", conn_id=self.k3cloud_conn_id)
        creds = self.client.creds
        self.close()  # the UI's check keeps no session of its own (a shared one stays the deployment's)
        if any(str(r.get("FCODE")).upper() == "CNY" for r in rows):
            return True, f"Connected to K3Cloud at {creds.base_url} as {creds.username} ({creds.auth_mode})"
        return False, ("Logged in, but currency PRE001 (CNY) was not found: extra acct_id is probably another data "
                       "center (账套) — copy the data-center id from the K3Cloud login page's data-center list")

    # --- writes --------------------------------------------------------------------------------------------
    def save(self, form_id: str, model: Mapping[str, Any], **options: Any) -> SaveResult:
        """Create or update one document (``FID``/PK 0 or absent creates).

        :param options: Save options by their K3Cloud names, e.g. ``IsAutoSubmitAndAudit=True``,
            ``NeedReturnFields=["FNumber"]``, ``NeedUpDateFields=[...]``.
        :raises BusinessRuleError: validation/duplicate/state refusal (``details`` lists ``FieldError``s).
        :raises OutcomeUnknownError: no answer after sending; read back before retrying.
        """
        data = {**check_options(options, SAVE_OPTIONS, "Save"), "Model": dict(model)}
        body = self.client.call("Save", {"formid": form_id, "data": data}, write=True)
        result = body.get("Result") or {}
        entities = success_entities(response_status(body) or {})
        first = entities[0] if entities else None
        raw_id = result.get("Id") or (first.id if first else None)
        self.log.info("k3cloud Save %s: ok", form_id)
        return SaveResult(
            id=int(raw_id) if raw_id else None,
            number=result.get("Number") or (first.number if first else None),
            need_return_data=list(result.get("NeedReturnData") or []),
        )

    def batch_save(self, form_id: str, models: Sequence[Mapping[str, Any]], **options: Any) -> list[BatchRowOutcome]:
        """Save several documents in one call; one outcome per input row, mapped by ``DIndex``.

        Rows the server refused are outcomes with ``ok=False`` and their errors — not an exception. Whole-call
        failures (permission, lock conflict after retries, session) still raise. Keep batches to 10–100 models.
        """
        if not models:
            return []
        opts = check_options(options, BATCH_SAVE_OPTIONS, "BatchSave")
        final: dict[int, BatchRowOutcome] = {}
        pending = list(range(len(models)))

        def send_pending() -> list[int]:
            # Packages refused with a 网控 lock conflict were not saved (the lock is taken before the save):
            # re-send only those, mapped back to their input index; the others keep their first outcome.
            nonlocal pending
            outcomes = self._batch_save_once(form_id, [models[i] for i in pending], opts)
            for index, outcome in zip(pending, outcomes):
                final[index] = replace(outcome, index=index)
            pending = [i for i in pending if not final[i].ok and final[i].msg_code == MSG_LOCK_CONFLICT]
            if pending:
                self.log.info("k3cloud BatchSave %s: %s package(s) hit a lock conflict", form_id, len(pending))
            return pending

        self.client.retry_while_pending("BatchSave", send_pending)
        result = [final[i] for i in range(len(models))]
        failed = sum(not o.ok for o in result)
        self.log.info("k3cloud BatchSave %s: %s saved, %s refused", form_id, len(result) - failed, failed)
        return result

    def _batch_save_once(self, form_id: str, models: Sequence[Mapping[str, Any]], opts: dict[str, Any]) -> list[BatchRowOutcome]:
        data = {**opts, "Model": [dict(m) for m in models]}
        body = self.client.call("BatchSave", {"formid": form_id, "data": data}, write=True, record_errors=True)
        status = response_status(body)
        if status is None:
            # Not a K3Cloud answer (a proxy's page, a wrong envelope): the batch may or may not have been saved.
            raise OutcomeUnknownError(
                f"{self.client.creds.base_url} answered BatchSave {form_id} without a ResponseStatus "
                f"({truncate(repr(body), 200)}); the batch may have been saved — read it back by number",
                system=SYSTEM, endpoint="BatchSave")
        return batch_outcomes(status, len(models))

    def submit(self, form_id: str, *, numbers: Sequence[str] | None = None, ids: Sequence[int] | None = None, **options: Any) -> OperationResult:
        """Submit documents (Z/A/D → B)."""
        return self._state_change("Submit", form_id, numbers, ids, options)

    def audit(self, form_id: str, *, numbers: Sequence[str] | None = None, ids: Sequence[int] | None = None, **options: Any) -> OperationResult:
        """Audit submitted documents (B → C)."""
        return self._state_change("Audit", form_id, numbers, ids, options)

    def unaudit(self, form_id: str, *, numbers: Sequence[str] | None = None, ids: Sequence[int] | None = None, **options: Any) -> OperationResult:
        """Reverse an audit (C → D)."""
        return self._state_change("UnAudit", form_id, numbers, ids, options)

    def delete(self, form_id: str, *, numbers: Sequence[str] | None = None, ids: Sequence[int] | None = None, **options: Any) -> OperationResult:
        """Delete documents that are not audited."""
        return self._state_change("Delete", form_id, numbers, ids, options)

    def _state_change(
        self, service: str, form_id: str, numbers: Sequence[str] | None, ids: Sequence[int] | None, options: Mapping[str, Any]
    ) -> OperationResult:
        data = {**check_options(options, STATE_OPTIONS, service), **ids_or_numbers(numbers, ids)}
        status = response_status(self.client.call(service, {"formid": form_id, "data": data}, write=True)) or {}
        result = OperationResult(success_entities(status), success_messages(status), errors_of(status))
        self.log.info("k3cloud %s %s: %s document(s)", service, form_id, len(result.successes))
        return result

    def push(
        self,
        form_id: str,
        target_form_id: str,
        rule_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int] | None = None,
        entry_ids: Sequence[int] | None = None,
        **options: Any,
    ) -> PushResult:
        """Push (下推) source documents to ``target_form_id`` with conversion rule ``rule_id``; targets are saved, not audited.

        :param entry_ids: push only these source entry lines.
        """
        data: dict[str, Any] = {
            **check_options(options, PUSH_OPTIONS, "Push"),
            **ids_or_numbers(numbers, ids),
            "RuleId": rule_id,
            "TargetFormId": target_form_id,
        }
        if entry_ids:
            data["EntryIds"] = ",".join(str(int(i)) for i in entry_ids)
        body = self.client.call("Push", {"formid": form_id, "data": data}, write=True)
        status = response_status(body) or {}
        convert = (body.get("Result") or {}).get("ConvertResponseStatus") or {}
        result = PushResult(
            targets=success_entities(status),
            converted=success_entities(convert) if isinstance(convert, Mapping) else [],
            messages=success_messages(status),
        )
        self.log.info("k3cloud Push %s -> %s: %s target(s)", form_id, target_form_id, len(result.targets))
        return result

    def execute_operation(
        self, form_id: str, op_number: str, *, numbers: Sequence[str] | None = None, ids: Sequence[int] | None = None, **options: Any
    ) -> OperationResult:
        """Run a form operation (``ExcuteOperation``): ``Forbid``, ``Enable``, ``Cancel``, ``CloseBill`` …"""
        if not isinstance(op_number, str) or not OP_NUMBER_RE.match(op_number):
            raise ValueError(f"invalid operation number {op_number!r}: expected an identifier such as 'Forbid'")
        data = {**check_options(options, OPERATION_OPTIONS, "ExcuteOperation"), **ids_or_numbers(numbers, ids)}
        body = self.client.call("ExcuteOperation", {"formid": form_id, "opNumber": op_number, "data": data}, write=True)
        status = response_status(body) or {}
        result = OperationResult(success_entities(status), success_messages(status), errors_of(status))
        self.log.info("k3cloud ExcuteOperation %s %s: %s document(s)", form_id, op_number, len(result.successes))
        return result
