"""Alerts when a flow's report fails: one digest per run, and a note to each owner of a rejected record.

Wiring (report task of each flow DAG)::

    @task(retries=0, trigger_rule="all_done", on_failure_callback=on_report_failure)
    def report(**context): ...

Who gets what:

* the digest (flow, window, status, counts, top reasons, link to the run) goes to the Fxiaoke open user ids
  in ``SYNC_ALERT_OPEN_USER_IDS`` (comma list) via ``FxiaokeHook.send_text_message``, and to a group-chat
  webhook (企业微信 / 钉钉 style ``{"msgtype": "text", "text": {"content": …}}``) when
  ``SYNC_ALERT_WEBHOOK_CONN_ID`` names an Airflow connection (URL in extra ``webhook_url``, or a full URL
  in ``host``). Both settings are read from the environment first, then from Airflow Variables;
* every CRM owner of a record *rejected* for a data reason gets one message listing their records and what
  to fix (the rejection reason). Records from K3Cloud (deliveries) have no CRM owner and are skipped.

No storms: once delivered, the digest is marked in the audit store (a ``sync_record`` row with outcome
``reported``, entity ``alert``, source id ``digest:<Airflow run id>``), so a retried or re-run callback of
the same Airflow run sends nothing. The mark is written after sending (a lost mark means a repeat, never a
lost alert). Every text goes through the audit store's secret scrubber before it leaves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fxiaoke_k3cloud.audit import AuditStore, RecordOutcome
from fxiaoke_k3cloud.audit.redact import safe_text
from fxiaoke_k3cloud.errors import ApiError, ConfigError, SyncError, TransportError
from fxiaoke_k3cloud.events.position import PREFIX
from fxiaoke_k3cloud.events.status import pending_change, watcher_states
from fxiaoke_k3cloud.flows.specs import FLOWS, flow_spec
from fxiaoke_k3cloud.hooks._http import HttpSettings, new_session
from fxiaoke_k3cloud.monitor import queries
from fxiaoke_k3cloud.monitor.text import one_line, run_digest

log = logging.getLogger(__name__)

USERS_SETTING = "SYNC_ALERT_OPEN_USER_IDS"
WEBHOOK_SETTING = "SYNC_ALERT_WEBHOOK_CONN_ID"
MARKER_ENTITY = "alert"
#: CRM look-ups for owners of rejected records, per run (each costs one API call of the paid quota).
MAX_OWNER_LOOKUPS = 50
#: Records listed per owner message (the rest are counted).
MAX_RECORDS_PER_OWNER = 20
WEBHOOK_TIMEOUT = 10.0
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class DigestResult:
    """What ``send_run_digest`` did."""

    sent: bool
    detail: str
    recipients: list[str] = field(default_factory=list)
    webhook: bool = False
    owners_notified: int = 0
    errors: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- settings
def _setting(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    try:
        from airflow.sdk import Variable

        return Variable.get(name, default=None)
    except Exception as exc:  # noqa: BLE001 — outside Airflow (CLI, tests) there may be no Variable backend
        log.debug("Variable %s not readable (%s); treating it as unset", name, type(exc).__name__)
        return None


def configured_open_user_ids() -> list[str]:
    """Open user ids from ``SYNC_ALERT_OPEN_USER_IDS`` (env, else Airflow Variable), comma separated."""
    raw = _setting(USERS_SETTING) or ""
    return list(dict.fromkeys(u.strip() for u in raw.split(",") if u.strip()))


def configured_webhook_conn_id() -> str | None:
    """The webhook connection id from ``SYNC_ALERT_WEBHOOK_CONN_ID`` (env, else Airflow Variable)."""
    value = (_setting(WEBHOOK_SETTING) or "").strip()
    return value or None


# ------------------------------------------------------------------------------------------- webhook
def post_webhook(conn_id: str, content: str) -> None:
    """POST ``{"msgtype": "text", "text": {"content": …}}`` to the connection's webhook URL.

    The URL usually embeds the robot's key, so it is never logged or put in an error message. TLS is
    verified (extra ``ca_bundle`` for a private CA; ``verify_ssl: false`` is an explicit, logged choice).
    """
    import requests
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    url = extra.get("webhook_url") or (conn.host if str(conn.host or "").startswith(("http://", "https://")) else None)
    if not url:
        raise ConfigError(
            f"connection {conn_id!r}: put the webhook URL in extra 'webhook_url' (or the full https://… URL in host)"
        )
    # The same transport settings as the hooks (timeout, TLS on, ca_bundle, an explicit and logged verify_ssl off).
    settings = HttpSettings.from_extra({"timeout": WEBHOOK_TIMEOUT, **extra})
    body = {"msgtype": "text", "text": {"content": content}}
    try:
        with new_session(settings, system=f"webhook {conn_id}") as session:
            response = session.post(url, json=body, timeout=settings.timeout)
    except requests.RequestException as exc:
        raise TransportError(f"webhook {conn_id!r}: {type(exc).__name__}", system="webhook") from None
    if response.status_code >= 300:
        raise TransportError(f"webhook {conn_id!r}: HTTP {response.status_code}", system="webhook",
                             status=response.status_code)
    try:
        answer = response.json()
    except ValueError:
        return  # some gateways answer plain "ok"
    # 企业微信/钉钉 answer {"errcode": 0}, 飞书 {"code": 0} / {"StatusCode": 0}: anything else is a refusal.
    if isinstance(answer, Mapping):
        for key in ("errcode", "code", "StatusCode"):
            if key in answer and answer[key] not in (0, "0"):
                message = safe_text(str(answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""))
                raise ApiError(f"webhook {conn_id!r} refused the message: {message}", system="webhook",
                               code=answer[key])


# ------------------------------------------------------------------------------------------- digest
def _marker_id(run_id: str) -> str:
    return f"digest:{run_id}"


def digest_already_sent(store: AuditStore, flow: str, run_id: str) -> bool:
    """Whether the digest of this Airflow run was delivered before (see the module docstring)."""
    return bool(store.record_history(source_id=_marker_id(run_id), flow=flow, entity=MARKER_ENTITY, limit=1))


def _is_crm_object(api_name: str) -> bool:
    # Fxiaoke API names: standard objects end in "Obj", custom ones in "__c"; K3Cloud forms do neither.
    return api_name.endswith("Obj") or api_name.endswith("__c")


def notify_rejection_owners(store: AuditStore, flow: str, run_pk: int, hook: Any) -> int:
    """Message each CRM owner of a rejected record with what to fix; returns the owners messaged."""
    spec = flow_spec(flow)
    if not _is_crm_object(spec.source_object):
        return 0
    rejected = queries.final_records(store, run_pk, ["rejected"])
    by_owner: dict[str, list[Mapping[str, Any]]] = {}
    for row in rejected[:MAX_OWNER_LOOKUPS]:
        try:
            record = hook.get_record(spec.source_object, row["source_id"])
        except SyncError as exc:
            log.warning("owner of %s %s not found (%s); not notified", spec.source_object, row["source_id"], exc)
            continue
        owners = record.get("owner") or []
        for owner in [owners] if isinstance(owners, str) else owners:
            by_owner.setdefault(str(owner), []).append(row)
    if len(rejected) > MAX_OWNER_LOOKUPS:
        log.warning("%s rejected records; owners of the first %s notified", len(rejected), MAX_OWNER_LOOKUPS)
    notified = 0
    for owner, rows in by_owner.items():
        lines = [f"[同步提醒] 以下{spec.source_object}记录未能同步到金蝶云星空，请在纷享销客中修改后保存（会自动重试）：",
                 "These CRM records were not synced to K3Cloud; please fix them in the CRM:"]
        for r in rows[:MAX_RECORDS_PER_OWNER]:
            name = one_line(r.get("source_name"), 60) or "(no name)"
            lines.append(f"- {name} ({r['source_id']}): {one_line(r.get('reason'), 200)}")
        if len(rows) > MAX_RECORDS_PER_OWNER:
            lines.append(f"… and {len(rows) - MAX_RECORDS_PER_OWNER} more")
        try:
            hook.send_text_message([owner], safe_text("\n".join(lines), limit=3500) or "")
            notified += 1
        except SyncError as exc:
            log.warning("could not message owner %s: %s", owner, exc)
    return notified


def send_run_digest(
    flow: str,
    run_pk: int,
    run_url: str | None = None,
    *,
    store: AuditStore,
    fxiaoke_hook: Any = None,
    webhook_conn_id: str | None = None,
    to_users: Sequence[str] | None = None,
    notify_owners: bool = True,
) -> DigestResult:
    """Send one run's digest (once per Airflow run) and the owners' fix-it messages.

    :param to_users: Fxiaoke open user ids; None reads ``SYNC_ALERT_OPEN_USER_IDS``.
    :param webhook_conn_id: webhook connection; None reads ``SYNC_ALERT_WEBHOOK_CONN_ID``.
    :param fxiaoke_hook: an ``FxiaokeHook`` (built from ``fxiaoke_default`` when needed and not given).
    """
    run = queries.get_run(store, run_pk)
    if run.flow != flow:
        raise ConfigError(f"run {run_pk} belongs to flow {run.flow!r}, not {flow!r}")
    if digest_already_sent(store, flow, run.run_id):
        log.info("%s run %s (%s): digest already sent; not sending again", flow, run_pk, run.run_id)
        return DigestResult(sent=False, detail="already sent")
    users = list(to_users) if to_users is not None else configured_open_user_ids()
    conn_id = webhook_conn_id if webhook_conn_id is not None else configured_webhook_conn_id()
    result = DigestResult(sent=False, detail="")
    text = run_digest(run, run_url)
    hook = fxiaoke_hook
    if hook is None and (users or notify_owners):
        from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

        hook = FxiaokeHook()
    if users:
        try:
            hook.send_text_message(users, text)
            result.recipients = users
        except SyncError as exc:
            result.errors.append(f"fxiaoke: {exc}")
    if conn_id:
        try:
            post_webhook(conn_id, text)
            result.webhook = True
        except SyncError as exc:
            result.errors.append(f"webhook: {exc}")
    if notify_owners and run.counts.get("rejected"):
        result.owners_notified = notify_rejection_owners(store, flow, run_pk, hook)
    result.sent = bool(result.recipients or result.webhook)
    channels = [f"{len(result.recipients)} Fxiaoke user(s)"] if result.recipients else []
    channels += [f"webhook {conn_id}"] if result.webhook else []
    if result.sent:
        store.record_outcomes(run_pk, [RecordOutcome(
            flow=flow, entity=MARKER_ENTITY, source_id=_marker_id(run.run_id), outcome="reported",
            reason=f"digest sent to {', '.join(channels)}; {result.owners_notified} record owner(s) notified",
        )])
        result.detail = f"sent to {', '.join(channels)}"
    elif not users and not conn_id:
        result.detail = f"no recipients: set {USERS_SETTING} and/or {WEBHOOK_SETTING}"
    else:
        result.detail = "not delivered: " + "; ".join(result.errors)
    for error in result.errors:
        log.warning("%s run %s digest: %s", flow, run_pk, safe_text(error))
    log.info("%s run %s digest: %s", flow, run_pk, result.detail)
    return result


# ------------------------------------------------------------------------------------------- callback
def _find_run_pk(store: AuditStore, flow: str, context: Mapping[str, Any]) -> int | None:
    ti = context.get("ti")
    extracted = ti.xcom_pull(task_ids=f"extract_{flow}") if ti is not None else None
    if isinstance(extracted, Mapping) and extracted.get("run_pk"):
        return int(extracted["run_pk"])
    # Extract failed before handing over its run key: find the run by the Airflow run id.
    run_id = getattr(context.get("dag_run"), "run_id", None) or context.get("run_id")
    for run in queries.list_runs(store, [flow], last=20, reasons=0):
        if run.run_id == run_id:
            return run.pk
    return None


def on_report_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of a flow's ``report`` task: send the run's digest. Never raises."""
    try:
        ti = context.get("ti")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None)
        spec = next((s for s in FLOWS.values() if s.dag_id == dag_id), None)
        if spec is None:
            log.warning("on_report_failure: DAG %s is not a known flow; no digest", dag_id)
            return
        store = AuditStore.from_airflow()
        try:
            run_pk = _find_run_pk(store, spec.name, context)
            if run_pk is None:
                log.warning("%s: no audit run found for this Airflow run; no digest", spec.name)
                return
            send_run_digest(spec.name, run_pk, getattr(ti, "log_url", None), store=store)
        finally:
            store.dispose()
    except Exception:  # a callback that raises only hides the original failure
        log.exception("on_report_failure: the alert digest could not be sent")


# ------------------------------------------------------------------------------------------- silent watcher
def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, tz=SHANGHAI).strftime("%Y-%m-%d %H:%M:%S (Asia/Shanghai)")


def silent_watcher_text(state: Mapping[str, Any], pending: Mapping[str, Any] | None, pending_error: str | None) -> str:
    """The alert for one silent watcher: which, since when, what is waiting, what to do."""
    since = "has never polled" if state["last_polled_ms"] is None else \
        f"last polled {_when(state['last_polled_ms'])}, {int(state['seconds_since_poll'])} s ago"
    lines = [f"[同步告警] 事件监听器 {state['name']} 已停止轮询 / watcher {state['name']} is silent: {since} "
             f"(expected every {state['poll_s']:g} s; alert after {state['threshold_s']:g} s).",
             f"Position: {_when(state['position_ms'])}"
             + (f", record {state['position_record_id']}" if state["position_record_id"] else "") + "."]
    if pending:
        lines.append(f"Waiting at the source ({state['source']} {state['form']}): {pending['record']} changed "
                     f"{_when(pending.get('at_ms'))} and newer — they reach the other system only at the next 15-minute run.")
    elif pending_error:
        lines.append(f"Could not check the source for waiting changes: {pending_error}")
    else:
        lines.append(f"No change waiting at the source ({state['source']} {state['form']}) yet.")
    lines.append("What to do: is the Airflow triggerer running (`airflow jobs check --job-type TriggererJob`, compose service "
                 "airflow-triggerer)? Its log shows the watcher's errors; restart it. The 15-minute schedule keeps syncing meanwhile.")
    return safe_text("\n".join(lines), limit=3500) or ""


def alert_silent_watchers(store: AuditStore, *, k3cloud_hook: Any = None, fxiaoke_hook: Any = None,
                          to_users: Sequence[str] | None = None, webhook_conn_id: str | None = None,
                          now_ms: int | None = None) -> list[str]:
    """Alert once per silent episode of each watcher (``events.status``); returns the names alerted now.

    A watcher is silent when it should poll (mode ``poll``) and has recorded no poll for longer than its
    threshold — whether or not changes are waiting: a dead triggerer is a fault before the first audit arrives,
    and waiting for one would send the alert only when a user is already waiting. Whether changes are waiting
    is checked with one call to the source and put in the text. The episode (the last poll it stopped at) is
    marked in the store (``watch:<name>:alerted``) after sending, so a check every minute sends one alert until
    the watcher polls again and goes silent again.
    """
    alerted = []
    users = list(to_users) if to_users is not None else configured_open_user_ids()
    conn_id = webhook_conn_id if webhook_conn_id is not None else configured_webhook_conn_id()
    for state in watcher_states(store, now_ms=now_ms):
        episode = state["last_polled_ms"] or 0
        done = store.get_watermark(f"{PREFIX}{state['name']}:alerted")
        if not state["silent"] or (done is not None and done >= episode):
            continue
        pending, pending_error = None, None
        try:
            pending = pending_change(state, k3cloud_hook=k3cloud_hook, fxiaoke_hook=fxiaoke_hook)
        except (SyncError, AttributeError) as exc:  # AttributeError: no hook for that source was given
            pending_error = safe_text(str(exc), limit=300)
        text = silent_watcher_text(state, pending, pending_error)
        sent = False
        if users and fxiaoke_hook is not None:
            try:
                fxiaoke_hook.send_text_message(users, text)
                sent = True
            except SyncError as exc:
                log.warning("silent-watcher alert for %s not sent to Fxiaoke: %s", state["name"], safe_text(str(exc)))
        if conn_id:
            try:
                post_webhook(conn_id, text)
                sent = True
            except SyncError as exc:
                log.warning("silent-watcher alert for %s not sent to webhook %s: %s", state["name"], conn_id, safe_text(str(exc)))
        log.warning("%s", text)
        if sent:
            store.set_watermark(f"{PREFIX}{state['name']}:alerted", episode, "alerted", force=True)
            alerted.append(state["name"])
    return alerted


def check_watchers() -> list[dict[str, Any]]:
    """The ``sync_watchers`` DAG's task: alert on silent watchers; returns ``watcher_states`` (for the XCom)."""
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook  # imported on use: the DAG file stays cheap to parse
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    store = AuditStore.from_airflow()
    try:
        alerted = alert_silent_watchers(store, k3cloud_hook=K3CloudHook(), fxiaoke_hook=FxiaokeHook())
        states = watcher_states(store)
    finally:
        store.dispose()
    for state in states:
        log.info("watcher %s (%s): last poll %s s ago (%s), silent=%s%s", state["name"], state["mode"],
                 state["seconds_since_poll"], state["last_result"], state["silent"],
                 " — alerted" if state["name"] in alerted else "")
    return states
