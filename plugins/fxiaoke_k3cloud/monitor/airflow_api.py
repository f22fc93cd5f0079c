"""The console's one call to Airflow: start a ``sync_redrive`` run through Airflow's REST API.

It sends the *user's own* token (the UI's ``_token`` cookie or the request's bearer token), so Airflow checks
that this person may trigger the DAG and records them as the run's triggering user; the console holds no
credentials of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

REDRIVE_DAG_ID = "sync_redrive"
TIMEOUT_S = 15


class AirflowApiError(Exception):
    """Airflow refused or did not answer; the message says what it said."""


@dataclass(frozen=True)
class Triggered:
    dag_run_id: str
    triggering_user: str | None


def user_token(headers: Any, cookies: Any) -> str | None:
    """The caller's Airflow JWT: ``Authorization: Bearer …`` or the UI's ``_token`` cookie."""
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return cookies.get("_token") or None


def trigger_redrive(api_base: str, token: str, flow: str, ids: list[str]) -> Triggered:
    """POST ``/api/v2/dags/sync_redrive/dagRuns`` with ``{"flow", "ids"}``; the run re-drives exactly those ids."""
    url = f"{api_base.rstrip('/')}/api/v2/dags/{REDRIVE_DAG_ID}/dagRuns"
    body = {"logical_date": None, "conf": {"flow": flow, "ids": ids},
            "note": f"Retry from the sync console: {len(ids)} {flow} record(s)"}
    try:
        r = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise AirflowApiError(f"Airflow's API at {api_base} did not answer: {type(exc).__name__}") from exc
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text[:300]
        raise AirflowApiError(f"Airflow refused to start {REDRIVE_DAG_ID} (HTTP {r.status_code}): {detail}")
    data = r.json()
    return Triggered(dag_run_id=str(data.get("dag_run_id")), triggering_user=data.get("triggering_user_name"))
