"""``python -m fxiaoke_k3cloud report|history`` against a store filled with known runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fxiaoke_k3cloud.cli import main

from .fill import CRM_ID, K3_NUMBER, SECRET, Filled

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_report_table_shows_every_run_with_counts_and_reasons(filled: Filled) -> None:
    code, out, _ = run("report", "--all-flows", "--last", "10")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["flow", "run", "run", "id", "window", "(UTC)", "status", "extracted", "created",
                                "updated", "unchanged", "rejected", "failed", "parked", "skipped"]
    bad = next(line for line in lines if "scheduled__2026-01-05T00:15:00" in line)
    assert bad.split()[:2] == ["customers", str(filled.bad_run)]
    assert bad.split()[-9:] == ["partial", "4", "0", "1", "0", "2", "1", "0", "0"]
    ok = next(line for line in lines if "scheduled__2026-01-05T00:00:00" in line)
    assert ok.split()[-9:] == ["success", "5", "5", "0", "0", "0", "0", "0", "0"]
    # Reasons follow the run they belong to, most frequent first; secrets stay masked.
    after_bad = lines[lines.index(bad) + 1 : lines.index(bad) + 4]
    assert after_bad[0].strip() == "message: 3 record(s) rejected or failed"
    assert after_bad[1].split() == ["2", "×", "rejected:", "tax_id", "is", "required", "(FTAXREGISTERCODE)"]
    assert after_bad[2].strip() == "1 × failed: K3Cloud refused: password=***"
    assert "2026-01-05 00:15 → 00:30" in bad
    assert any(line.split()[0] == "orders" for line in lines)
    assert SECRET not in out


def test_report_json_for_one_flow(filled: Filled) -> None:
    code, out, _ = run("report", "--flow", "customers", "--format", "json")
    assert code == 0
    runs = json.loads(out)
    assert [r["id"] for r in runs] == [filled.bad_run, filled.ok_run]  # newest first
    bad = runs[0]
    assert bad["status"] == "partial"
    assert bad["counts"] == {"extracted": 4, "created": 0, "updated": 1, "unchanged": 0, "rejected": 2,
                             "failed": 1, "parked": 0, "skipped": 0}
    assert bad["window_start"] == "2026-01-05T00:15:00+00:00"
    assert bad["top_reasons"][0] == {"outcome": "rejected", "reason": "tax_id is required (FTAXREGISTERCODE)",
                                     "count": 2}
    assert runs[1]["top_reasons"] == []


def test_report_last_and_since_filter(filled: Filled) -> None:
    _, out, _ = run("report", "--flow", "customers", "--last", "1", "--format", "json")
    assert [r["id"] for r in json.loads(out)] == [filled.bad_run]
    # 08:15 in Shanghai is 00:15 UTC: the bad run started then, the clean one before.
    _, out, _ = run("report", "--all-flows", "--since", "2026-01-05T08:15", "--format", "json")
    assert {r["id"] for r in json.loads(out)} == {filled.bad_run, filled.order_run}
    code, out, _ = run("report", "--since", "2030-01-01T00:00+00:00")
    assert code == 0 and out.startswith("No runs of any flow since 2030-01-01T00:00:00+00:00")


def test_history_by_crm_id_and_by_k3_number(filled: Filled) -> None:
    for key in (CRM_ID, K3_NUMBER):
        code, out, _ = run("history", key)
        assert code == 0
        rows = [line.split() for line in out.splitlines()[3:]]
        assert [r[6] for r in rows] == ["updated", "created"], out
        assert all(r[4] == CRM_ID and r[5] == K3_NUMBER for r in rows)
    code, out, _ = run("history", CRM_ID, "--format", "json")
    assert [r["run"] for r in json.loads(out)] == [filled.bad_run, filled.ok_run]


def test_history_of_unknown_record_says_so(sqlite_filled: Filled) -> None:
    code, out, _ = run("history", "nope-123")
    assert code == 0
    assert "Nothing recorded for 'nope-123'" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "--flow", "invoices"], "invalid choice: 'invoices'"),
        (["report", "--since", "last tuesday"], "is not an ISO 8601 date/time"),
        (["report", "--last", "0"], "must be a whole number >= 1"),
        (["report", "--flow", "orders", "--all-flows"], "not allowed with argument"),
        (["history"], "the following arguments are required: key"),
        ([], "the following arguments are required: {report,history,migrate,check,fields}"),
    ],
)
def test_usage_errors_exit_2_with_a_message(argv: list[str], message: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNC_AUDIT_URL", f"sqlite:///{tmp_path / 'never-opened.db'}")
    code, out, err = run(*argv)
    assert code == 2
    assert message in err and "usage:" in err
    assert "Traceback" not in err and out == ""


def test_empty_store_is_a_message_not_an_error(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "missing.db"
    monkeypatch.setenv("SYNC_AUDIT_URL", f"sqlite:///{missing}")
    code, out, err = run("report")
    assert code == 0
    assert "has no sync runs yet" in err
    assert not missing.exists()  # reading never creates the database
    code, out, _ = run("report", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_unreachable_store_exits_1_without_traceback_or_password(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNC_AUDIT_URL", "postgresql://sync:s3cret-pw@127.0.0.1:1/sync_audit")
    code, out, err = run("report", "--all-flows")
    assert code == 1
    assert "cannot read the audit store at postgresql+psycopg2://sync:***@127.0.0.1:1/sync_audit" in err
    assert "s3cret-pw" not in err and "Traceback" not in err


def test_migrate_creates_the_tables_once(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fxiaoke_k3cloud.audit import AuditStore
    from fxiaoke_k3cloud.audit.engine import HEAD_REVISION

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    code, out, _ = run("migrate")
    assert code == 0 and f"upgraded from an empty database to revision {HEAD_REVISION}" in out
    store = AuditStore(url)
    assert store.schema_revision() == HEAD_REVISION
    store.dispose()
    code, out, _ = run("migrate")
    assert code == 0 and f"already at revision {HEAD_REVISION}" in out
    code, out, err = run("report")
    assert code == 0 and "No runs of any flow" in out  # tables now, no runs yet
    assert err.splitlines() == [f"Audit store: {url} (from $SYNC_AUDIT_URL)"]  # which store, and no warning


def test_migrate_on_an_unreachable_store_exits_1_without_password(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNC_AUDIT_URL", "postgresql://sync:s3cret-pw@127.0.0.1:1/sync_audit")
    code, out, err = run("migrate")
    assert code == 1
    assert "cannot migrate the audit store at postgresql+psycopg2://sync:***@127.0.0.1:1/sync_audit" in err
    assert "s3cret-pw" not in err and "Traceback" not in err


def test_python_dash_m_entry_point(sqlite_filled: Filled) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fxiaoke_k3cloud", "report", "--flow", "orders", "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        # as a user runs it: not in Airflow's unit-test mode (which logs "Unit test configuration loaded" to stdout)
        env={k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"},
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["flow"] for r in json.loads(proc.stdout)] == ["orders"]
