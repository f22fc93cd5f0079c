"""Where the audit store lives and how its schema gets there: URL resolution, engines, migrations.

The store is our own database (Airflow 3 tasks may not touch Airflow's metadata DB). Its URL comes from,
in order: ``$SYNC_AUDIT_URL``; the Airflow connection ``sync_audit``; SQLite at
``$AIRFLOW_HOME/sync_audit.db`` for a laptop demo only.

The SQLite default is the embedded demo's, and only its: every task process of a LocalExecutor (or one that
sets ``$SYNC_AUDIT_EMBEDDED=1``) runs on one machine and sees one file. Under any other executor (Celery,
Kubernetes, ...) each worker would keep its own private id map and claims, so a missing connection is a
:class:`ConfigError` naming it.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from fxiaoke_k3cloud.errors import ConfigError

log = logging.getLogger(__name__)

URL_ENV = "SYNC_AUDIT_URL"
DEFAULT_CONN_ID = "sync_audit"
# "1": the embedded SQLite default is wanted whatever the executor (the demo scripts set it).
EMBEDDED_ENV = "SYNC_AUDIT_EMBEDDED"
# Executors whose task processes all run on the scheduler's machine (they can share one SQLite file).
LOCAL_EXECUTORS = ("LocalExecutor",)
VERSION_TABLE = "sync_audit_alembic_version"
HEAD_REVISION = "0010"  # the newest migration (a test checks it against Alembic's own head)
# Key of the Postgres advisory lock taken while migrating (any constant; "sync_aud" in ASCII).
MIGRATION_LOCK_KEY = 0x73796E635F617564
SUPPORTED_DIALECTS = ("postgresql", "sqlite")


def normalize_url(url: str) -> str:
    """Map the schemes Airflow renders (``postgres://``, ``postgresql://``) to the psycopg2 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def display_url(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — an unparsable URL must still never be echoed with its secret
        return "<unparsable audit store URL>"


def sqlite_fallback_url() -> str:
    """SQLite file in ``$AIRFLOW_HOME`` (default ``~/airflow``), its folder created if needed."""
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'sync_audit.db'}"


def configured_executors() -> list[str]:
    """Class names of the executors in Airflow's ``[core] executor`` (``"A,alias:pkg.B"`` → ``["A", "B"]``)."""
    from airflow.sdk.configuration import conf

    names = []
    for entry in (conf.get("core", "executor", fallback="") or "LocalExecutor").split(","):
        # An entry is "Name", "pkg.module.Name" or "alias:pkg.module.Name".
        path = entry.strip().rsplit(":", 1)[-1].strip()
        if path:
            names.append(path.rsplit(".", 1)[-1])
    return names or ["LocalExecutor"]


def embedded_default_allowed() -> tuple[bool, str]:
    """Whether the SQLite default may stand in for a missing connection, and why (for the messages)."""
    if os.environ.get(EMBEDDED_ENV, "").strip().lower() in ("1", "true", "yes"):
        return True, f"${EMBEDDED_ENV} is set"
    executors = configured_executors()
    if all(name in LOCAL_EXECUTORS for name in executors):
        return True, f"executor {', '.join(executors)} runs every task on this machine"
    return False, f"executor {', '.join(executors)} runs tasks on other machines"


def configured_url(conn_id: str = DEFAULT_CONN_ID) -> tuple[str, str] | None:
    """``(url, source)`` from ``$SYNC_AUDIT_URL`` or the Airflow connection, or None when neither exists."""
    env_url = os.environ.get(URL_ENV)
    if env_url:
        return normalize_url(env_url), f"${URL_ENV}"
    # Imported here: the audit package must stay cheap to import at DAG-parse time.
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    if (conn.conn_type or "").lower() == "sqlite":
        # Airflow keeps a SQLite path in ``host``; get_uri() would render "sqlite://<path>" wrongly.
        return f"sqlite:///{conn.host}", f"Airflow connection {conn_id!r}"
    return normalize_url(conn.get_uri()), f"Airflow connection {conn_id!r}"


def resolve_airflow_url(conn_id: str = DEFAULT_CONN_ID) -> tuple[str, str]:
    """Return ``(url, source)`` for the audit store; ``source`` says where the URL came from.

    :raises ConfigError: no URL is configured and the executor is not a local one (see the module doc).
    """
    found = configured_url(conn_id)
    if found is not None:
        return found
    allowed, why = embedded_default_allowed()
    if not allowed:
        raise ConfigError(
            f"audit store: the Airflow connection {conn_id!r} does not exist and ${URL_ENV} is not set, and "
            f"{why}: a local SQLite file would be a private id map per worker. Create the connection {conn_id!r} "
            f"on every Airflow component (e.g. AIRFLOW_CONN_{conn_id.upper()}=postgresql://user:password@host:5432/"
            f"sync_audit) or set ${URL_ENV}; the embedded SQLite default is for the LocalExecutor demo only "
            f"(${EMBEDDED_ENV}=1 forces it)."
        )
    return sqlite_fallback_url(), f"SQLite fallback (no Airflow connection {conn_id!r}; {why})"


def _configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave like Postgres where the store relies on it: real transactions, FKs, waiting."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling skips BEGIN before DDL; take control of it instead.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA busy_timeout = 30000")
        if engine.url.database not in (None, "", ":memory:"):
            # Readers do not block the writer: parallel Airflow tasks share one file.
            cur.execute("PRAGMA journal_mode = WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue instead of failing with
        # "database is locked" when a read transaction tries to upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for a supported dialect (postgresql or sqlite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise ConfigError(
            f"audit store URL {display_url(url)} uses {parsed.get_backend_name()!r}; "
            f"supported: {', '.join(SUPPORTED_DIALECTS)} (e.g. postgresql+psycopg2://user@host/db)"
        )
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("fxiaoke_k3cloud.audit") / "migrations"))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.attributes["connection"] = connection
    return cfg


def run_migrations(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` in one transaction, serialised across processes.

    Postgres: a transaction-scoped advisory lock, so a second process waits, then finds the schema at
    head and does nothing. SQLite: ``BEGIN IMMEDIATE`` (see ``_configure_sqlite``) serialises writers.
    """
    if revision == "head" and _stored_revision(engine) == HEAD_REVISION:
        return  # already there: skip importing and running Alembic (≈ 0.2 s in every task process)
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        command.upgrade(_alembic_config(conn), revision)


def _stored_revision(engine: Engine) -> str | None:
    """The revision in the version table read with plain SQL, or None (no table yet, or not exactly one row)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except sa.exc.DBAPIError:
        return None
    return rows[0] if len(rows) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()
