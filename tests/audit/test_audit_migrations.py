"""migrate(): idempotent, serialised across processes, and the schema module matches the migrations."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.engine import HEAD_REVISION, VERSION_TABLE
from fxiaoke_k3cloud.audit.schema import metadata

TABLES = {"sync_run", "sync_record", "id_map", "watermark", "parked", "sync_stage", "sync_drift_run", "sync_drift", "sync_claim", "sync_api_token", "sync_call_window",
          "sync_write_back",
          VERSION_TABLE}
HEAD = "0010"


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrate_creates_schema_and_second_migrate_is_a_noop(empty_url: str) -> None:
    store = AuditStore(empty_url)
    assert store.schema_revision() is None
    store.migrate()
    assert _tables(empty_url) == TABLES
    assert store.schema_revision() == HEAD
    store.set_watermark("customers", 1_700_000_000_000, "run-1")

    store.migrate()

    assert store.schema_revision() == HEAD
    assert store.get_watermark("customers") == 1_700_000_000_000
    with store.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1
    store.dispose()


def test_the_fast_path_head_is_alembics_head() -> None:
    """migrate() skips Alembic when the database is at HEAD_REVISION: that must be the newest migration."""
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("fxiaoke_k3cloud.audit") / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD_REVISION] == [HEAD]


def test_migrate_upgrades_a_database_left_at_an_older_revision(empty_url: str) -> None:
    from fxiaoke_k3cloud.audit.engine import run_migrations

    store = AuditStore(empty_url)
    run_migrations(store.engine, "0002")
    assert store.schema_revision() == "0002" and "sync_drift" not in _tables(empty_url)
    store.migrate()
    assert store.schema_revision() == HEAD and "sync_drift" in _tables(empty_url)
    store.dispose()


def test_schema_module_matches_the_migrations(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        diff = [d for d in compare_metadata(ctx, metadata) if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]
    engine.dispose()
    assert diff == []


def test_concurrent_migrate_from_two_processes(empty_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from fxiaoke_k3cloud.audit import AuditStore
        store = AuditStore(sys.argv[1])
        store.engine  # build the engine before the start line
        while not Path(sys.argv[2]).exists():
            time.sleep(0.005)
        store.migrate()
        print(store.schema_revision())
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, empty_url, str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(1.5)  # both interpreters are up and waiting at the start line
    go.touch()
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        # the revision is the last line (Airflow's unit-test configuration logs Alembic's progress to stdout)
        assert out.strip().splitlines()[-1] == HEAD
    assert _tables(empty_url) == TABLES
