"""The Airflow plugin: the monitor app under ``/sync-monitor`` and a "Sync monitor" entry in the UI's nav.

Registered through this package's provider info (``plugins`` key of ``get_provider_info``), not the
plugins folder (``plugins/.airflowignore`` keeps Airflow from importing the package module by module).
Restart the api-server after changing it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from fxiaoke_k3cloud.events import receiver
from fxiaoke_k3cloud.monitor.app import create_app

URL_PREFIX = "/sync-monitor"


class SyncMonitorPlugin(AirflowPlugin):
    name = "sync_monitor"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Fxiaoke ⇄ K3Cloud sync monitor"},
        {"app": receiver.create_app(), "url_prefix": "/sync-hooks", "name": "Fxiaoke ⇄ K3Cloud push receiver"},
    ]
    external_views = [
        {
            "name": "Sync monitor",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "sync-monitor",
        }
    ]
