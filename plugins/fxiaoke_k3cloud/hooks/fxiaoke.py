"""FxiaokeHook: the Fxiaoke (纷享销客) OpenAPI client (skeleton; filled in by the Fxiaoke issue)."""

from __future__ import annotations

from airflow.sdk import BaseHook


class FxiaokeHook(BaseHook):
    """Talks to the Fxiaoke OpenAPI (legacy corpAccessToken protocol)."""

    conn_name_attr = "fxiaoke_conn_id"
    default_conn_name = "fxiaoke_default"
    conn_type = "fxiaoke"
    hook_name = "Fxiaoke CRM (纷享销客)"

    def __init__(self, fxiaoke_conn_id: str = default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fxiaoke_conn_id = fxiaoke_conn_id
