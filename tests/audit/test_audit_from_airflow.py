"""AuditStore.from_airflow(): $SYNC_AUDIT_URL, then the Airflow connection, then (LocalExecutor demo only) SQLite."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.engine import normalize_url
from fxiaoke_k3cloud.errors import ConfigError


def _logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """What was logged: importing Airflow re-routes stdlib logging to its structlog console output."""
    captured = capsys.readouterr()
    return caplog.text + captured.out + captured.err


@pytest.fixture(autouse=True)
def _no_audit_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNC_AUDIT_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SYNC_AUDIT", raising=False)


@pytest.mark.postgres
def test_airflow_connection_with_postgres_uri(
    pg_session_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Trust auth ignores the password; it is there to prove it is never logged.
    uri = sa.make_url(pg_session_url).set(drivername="postgresql", password="Pg-Secret-77").render_as_string(hide_password=False)
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_AUDIT", uri)
    caplog.set_level(logging.INFO, logger="fxiaoke_k3cloud.audit")

    store = AuditStore.from_airflow()

    assert store.dialect == "postgresql" and store.engine.driver == "psycopg2"
    store.migrate()
    store.set_watermark("from_airflow", 5, "r")
    assert store.get_watermark("from_airflow") == 5
    logged = _logged(caplog, capsys)
    assert "Airflow connection 'sync_audit'" in logged and "postgresql+psycopg2://postgres:***@" in logged
    assert "Pg-Secret-77" not in logged and "Pg-Secret-77" not in repr(store) and "Pg-Secret-77" not in store.url
    store.dispose()


def test_falls_back_to_sqlite_in_airflow_home(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    caplog.set_level(logging.INFO, logger="fxiaoke_k3cloud.audit")

    store = AuditStore.from_airflow()
    store.migrate()

    assert store.dialect == "sqlite"
    assert (tmp_path / "home" / "sync_audit.db").exists()
    assert "SQLite fallback" in _logged(caplog, capsys)
    store.dispose()


def test_sync_audit_url_env_wins_over_the_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_AUDIT", "postgresql://nobody@127.0.0.1:1/nothing")
    monkeypatch.setenv("SYNC_AUDIT_URL", f"sqlite:///{tmp_path / 'env.db'}")
    store = AuditStore.from_airflow()
    store.migrate()
    assert store.dialect == "sqlite" and (tmp_path / "env.db").exists()
    store.dispose()


def test_other_connection_id_and_sqlite_connection_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_LOCAL", f'{{"conn_type": "sqlite", "host": "{tmp_path / "c.db"}"}}')
    store = AuditStore.from_airflow("audit_local")
    store.migrate()
    assert (tmp_path / "c.db").exists()
    store.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+psycopg2://u@h/db?sslmode=require"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_unsupported_database_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="supported: postgresql, sqlite"):
        AuditStore("mysql+pymysql://u:pw@h/db").engine


@pytest.mark.parametrize("executor", ["CeleryExecutor", "LocalExecutor,CeleryExecutor",
                                      "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
                                      "KubernetesExecutor"])
def test_missing_connection_under_a_distributed_executor_is_an_error_naming_it(
    executor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    monkeypatch.delenv("SYNC_AUDIT_EMBEDDED", raising=False)

    with pytest.raises(ConfigError, match=r"connection 'sync_audit' does not exist.*AIRFLOW_CONN_SYNC_AUDIT="):
        AuditStore.from_airflow()

    assert not (tmp_path / "home" / "sync_audit.db").exists()  # no private SQLite file was started


def test_the_demo_opt_in_keeps_the_embedded_default_under_any_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("SYNC_AUDIT_EMBEDDED", "1")
    caplog.set_level(logging.INFO, logger="fxiaoke_k3cloud.audit")

    store = AuditStore.from_airflow()
    store.migrate()

    assert store.dialect == "sqlite" and (tmp_path / "home" / "sync_audit.db").exists()
    assert "SYNC_AUDIT_EMBEDDED is set" in _logged(caplog, capsys)
    store.dispose()


def test_a_configured_connection_is_used_under_celery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_AUDIT", f'{{"conn_type": "sqlite", "host": "{tmp_path / "shared.db"}"}}')
    store = AuditStore.from_airflow()
    store.migrate()
    assert (tmp_path / "shared.db").exists()
    store.dispose()
