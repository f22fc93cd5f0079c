"""Fxiaoke CRM ⇄ Kingdee K3Cloud sync: hooks, mapping engine, flow steps and audit store for Airflow.

This module stays import-light: Airflow's providers manager imports it to read ``get_provider_info``.
"""

from __future__ import annotations

__version__ = "0.1.0"

_TLS_FIELDS = {
    "timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for an answer to one request (connect timeout is 10 s).",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "description": "Keep on. Switching it off is logged as a warning on every connection.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "description": "Path to a PEM file of CA certificates, for a private or self-signed CA.",
        "schema": {"type": ["string", "null"]},
    },
}


def get_provider_info() -> dict:
    """Describe the provider and its two connection types to Airflow (UI connection form included)."""
    return {
        "package-name": "fxiaoke-k3cloud-sync",
        "name": "Fxiaoke CRM ⇄ Kingdee K3Cloud sync",
        "description": "Hooks and connection types for Fxiaoke (纷享销客) OpenAPI and Kingdee K3Cloud (金蝶云星空) Web API.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "fxiaoke",
                "hook-class-name": "fxiaoke_k3cloud.hooks.fxiaoke.FxiaokeHook",
                "hook-name": "Fxiaoke CRM (纷享销客)",
                "conn-fields": {
                    "permanent_code": {
                        "label": "Permanent code",
                        "description": "永久授权码 from developer mode of the self-built app.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "open_user_id": {
                        "label": "Current open user id",
                        "description": "FSUID_… of the acting employee (a CRM admin is recommended).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "mobile": {
                        "label": "Mobile (to resolve the open user id)",
                        "description": "Used once via /cgi/user/getByMobile when no open user id is given.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "calls_per_20s": {
                        "label": "Client throttle (calls per 20 s per endpoint)",
                        "description": "At most the gateway's 100 calls / 20 s per endpoint (the default), "
                                       "shared by every task process when the audit store is configured.",
                        "schema": {"type": ["integer", "null"], "default": 100},
                    },
                    "call_budget": {
                        "label": "Call budget per hook",
                        "description": "Stop with a clear error after this many API calls (protects paid quota).",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "max_in_flight": {
                        "label": "Query requests in flight",
                        "description": "Query pages a task reads at once (1–32): the rest of a cursor query's "
                                       "pages by offset, pages in order, the same calls; 1 = one at a time.",
                        "schema": {"type": ["integer", "null"], "default": 4, "minimum": 1, "maximum": 32},
                    },
                    **_TLS_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Host", "login": "App ID", "password": "App secret"},
                    "placeholders": {
                        "host": "https://open.fxiaoke.com",
                        "login": "FSAID_xxxxxxx",
                        "open_user_id": "FSUID_…",
                    },
                },
            },
            {
                "connection-type": "k3cloud",
                "hook-class-name": "fxiaoke_k3cloud.hooks.k3cloud.K3CloudHook",
                "hook-name": "Kingdee K3Cloud (金蝶云星空)",
                "conn-fields": {
                    "acct_id": {
                        "label": "Data center (acct) id",
                        "description": "账套 id, e.g. 65a1b2c3d4e5f6.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "auth_mode": {
                        "label": "Auth mode",
                        "description": "password: ValidateUser; app_secret: LoginByAppSecret; signed: SDK signed headers.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["password", "app_secret", "signed", None],
                            "default": "password",
                        },
                    },
                    "app_id": {
                        "label": "App id",
                        "description": "第三方系统登录授权 app id (<clientid>_<32 chars> for signed mode).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "app_secret": {
                        "label": "App secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "lcid": {
                        "label": "Language (lcid)",
                        "description": "2052 zh-CN, 1033 en-US, 3076 zh-TW.",
                        "schema": {"type": ["integer", "null"], "default": 2052},
                    },
                    "org_number": {
                        "label": "Organisation number",
                        "description": "Org number used in signed mode and as default create/use org, e.g. 100.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "max_in_flight": {
                        "label": "Requests in flight per load",
                        "description": "K3Cloud requests a load sends at once (1–32); never more than the load "
                                       "task's slots in the k3cloud_api pool (4).",
                        "schema": {"type": ["integer", "null"], "default": 4, "minimum": 1, "maximum": 32},
                    },
                    **_TLS_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Base URL", "login": "User name", "password": "Password"},
                    "placeholders": {"host": "https://tenant.ik3cloud.com/k3cloud/", "org_number": "100"},
                },
            },
        ],
    }
