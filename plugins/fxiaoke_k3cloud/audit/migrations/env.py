"""Alembic environment of the audit store.

Run programmatically by ``fxiaoke_k3cloud.audit.migrate.run_migrations``, which passes an open
connection (inside a transaction holding the migration lock) as ``config.attributes["connection"]``.
A ``sqlalchemy.url`` main option works too, for developers calling Alembic's command API by hand.
Logging is left alone on purpose: ``fileConfig`` would reconfigure Airflow's task logging.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from fxiaoke_k3cloud.audit.schema import metadata

config = context.config
VERSION_TABLE = config.get_main_option("version_table") or "sync_audit_alembic_version"


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # Our own version table: the audit tables may share a database with Airflow's, which uses
        # ``alembic_version`` itself.
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode lets later migrations copy-and-move tables.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported for the audit store")
run_migrations_online()
