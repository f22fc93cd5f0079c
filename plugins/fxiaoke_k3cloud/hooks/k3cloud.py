"""K3CloudHook: the Kingdee K3Cloud (金蝶云星空) Web API client (skeleton; filled in by the K3Cloud issue)."""

from __future__ import annotations

from airflow.sdk import BaseHook


class K3CloudHook(BaseHook):
    """Talks to the K3Cloud Web API (session login or the official SDK's signed headers)."""

    conn_name_attr = "k3cloud_conn_id"
    default_conn_name = "k3cloud_default"
    conn_type = "k3cloud"
    hook_name = "Kingdee K3Cloud (金蝶云星空)"

    def __init__(self, k3cloud_conn_id: str = default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k3cloud_conn_id = k3cloud_conn_id
