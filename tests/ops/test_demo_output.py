"""`make demo` shows its own lines, not the libraries' log lines (those go to the demo's log files)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import demo  # noqa: E402


def test_helper_output_keeps_its_own_lines_and_logs_the_rest(tmp_path, capsys) -> None:
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "logging.getLogger('airflow.sdk._shared.secrets_masker.secrets_masker').warning("
        "\"Skipping masking for a secret as it's too short (<5 chars)\")\n"
        "print('2026-12-02T18:25:07.782913Z [warning  ] structlog line [py.warnings]', file=sys.stderr)\n"
        "print('Audit store: sqlite:///x (from $SYNC_AUDIT_URL)', file=sys.stderr)\n"
        "print('  K3Cloud user audited 3 sale orders')\n"
    )
    log = tmp_path / "helper.log"
    assert demo.run_quietly([sys.executable, "-c", script], dict(os.environ), log) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown == ["  K3Cloud user audited 3 sale orders"]
    kept = log.read_text()
    assert "Skipping masking" in kept and "structlog line" in kept and "audited 3" in kept
