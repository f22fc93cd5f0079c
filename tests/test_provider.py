"""The package registers as an Airflow provider with the fxiaoke and k3cloud connection types and their fields."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FX_FIELDS = {"permanent_code", "open_user_id", "mobile", "calls_per_20s", "call_budget", "max_in_flight", "timeout", "verify_ssl", "ca_bundle"}
K3_FIELDS = {"acct_id", "auth_mode", "app_id", "app_secret", "lcid", "org_number", "max_in_flight", "timeout", "verify_ssl", "ca_bundle"}


@pytest.fixture(scope="module")
def providers():
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


@pytest.mark.parametrize(
    "conn_type, hook_class",
    [("fxiaoke", "fxiaoke_k3cloud.hooks.fxiaoke.FxiaokeHook"), ("k3cloud", "fxiaoke_k3cloud.hooks.k3cloud.K3CloudHook")],
)
def test_connection_type_is_registered_with_its_hook(providers, conn_type, hook_class):
    metas = {m.connection_type: m for m in providers.iter_connection_type_hook_ui_metadata()}
    assert metas[conn_type].hook_class_name == hook_class
    assert "schema" in metas[conn_type].field_behaviour["hidden_fields"]


@pytest.mark.parametrize("conn_type, fields", [("fxiaoke", FX_FIELDS), ("k3cloud", K3_FIELDS)])
def test_connection_form_offers_every_field(providers, conn_type, fields):
    widgets = providers.connection_form_widgets
    offered = {key.split("__", 2)[2] for key in widgets if key.startswith(f"extra__{conn_type}__")}
    assert offered == fields


@pytest.mark.parametrize("key", ["extra__fxiaoke__permanent_code", "extra__k3cloud__app_secret"])
def test_secret_fields_are_password_fields_and_sensitive(providers, key):
    widget = providers.connection_form_widgets[key]
    assert widget.field["schema"]["format"] == "password"
    assert widget.is_sensitive


def test_relabelled_standard_fields(providers):
    behaviours = providers.field_behaviours
    assert behaviours["fxiaoke"]["relabeling"] == {"host": "Host", "login": "App ID", "password": "App secret"}
    assert behaviours["k3cloud"]["relabeling"]["host"] == "Base URL"
    assert behaviours["fxiaoke"]["placeholders"]["host"] == "https://open.fxiaoke.com"


def test_airflow_cli_lists_both_hooks(tmp_path):
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path))
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run([str(airflow), "providers", "hooks"], env=env, capture_output=True, text=True, check=True).stdout
    assert "fxiaoke_k3cloud.hooks.fxiaoke.FxiaokeHook" in out
    assert "fxiaoke_k3cloud.hooks.k3cloud.K3CloudHook" in out


def test_hooks_construct_without_io():
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    # No connection exists with these ids: constructing must not look it up.
    assert FxiaokeHook("no_such_conn").fxiaoke_conn_id == "no_such_conn"
    assert K3CloudHook("no_such_conn").k3cloud_conn_id == "no_such_conn"
