"""Command line for people without the Airflow UI: what the flows did, and one record's whole history.

::

    python -m fxiaoke_k3cloud report [--flow <a flow of flows/specs.py> | --all-flows]
                                     [--since ISO] [--last N] [--format table|json]
    python -m fxiaoke_k3cloud history <CRM id or K3 number> [--format table|json]
    python -m fxiaoke_k3cloud migrate
    python -m fxiaoke_k3cloud check [--no-connections]
    python -m fxiaoke_k3cloud fields <CRM object, e.g. AccountObj> [--flow customers] [--format table|json]

``report`` and ``history`` only read the audit store; ``migrate`` creates or upgrades its tables (a deployment
step: the flows' first task would do it too, on its own clock). ``check`` validates every flow's mapping file
and tests the connections ``fxiaoke_default`` and ``k3cloud_default`` before a run (exit 3 when one fails).
``fields`` describes a CRM object in *your* tenant: its fields, which ones the flow's mapping reads, the
mapping's source fields the tenant does not have (the shipped mappings name the simulator's custom fields, such
as ``field_fnfcA__c``), and mapping lines to start from for the custom fields not mapped yet.

The store is ``$SYNC_AUDIT_URL``, the ``sync_audit`` Airflow connection, or SQLite under ``$AIRFLOW_HOME``;
without ``$AIRFLOW_HOME`` this checkout's own ``.airflow/`` (where `make demo` and `make airflow` keep it) is
used when it exists. Every command says on stderr which store it read. Exit codes: 0 done (also when there is
nothing to show), 1 the store cannot be read, 2 usage error, 3 a check failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from fxiaoke_k3cloud.flows.specs import FLOWS

EXIT_OK = 0
EXIT_STORE = 1
EXIT_USAGE = 2
EXIT_CHECK = 3
#: The checkout's local Airflow home (`make demo`, `make airflow`): plugins/fxiaoke_k3cloud/cli.py → ../../.airflow
PROJECT_HOME = Path(__file__).resolve().parents[2] / ".airflow"
#: ``--since`` without an offset is China time, like the DAGs' ``since``/``until`` params.
NAIVE_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class UsageError(Exception):
    """Bad arguments; printed with the usage line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    # argparse prints and exits on its own; raise instead so main() keeps control of output and code.
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.format_usage().strip()}\n{self.prog}: error: {message}")


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is Asia/Shanghai time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date/time (e.g. 2026-01-05 or 2026-01-05T08:00+08:00)"
        ) from None
    return value.replace(tzinfo=NAIVE_TZ) if value.tzinfo is None else value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m fxiaoke_k3cloud", description="Sync audit reports, and the audit store's schema.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="{report,history,migrate,check,fields}")

    report = sub.add_parser("report", help="runs per flow: window, status, counts, top reasons")
    which = report.add_mutually_exclusive_group()
    which.add_argument("--flow", choices=sorted(FLOWS), help="one flow")
    which.add_argument("--all-flows", action="store_true", help="every flow in the store (the default)")
    report.add_argument("--since", type=parse_since, help="runs started at/after (ISO; no offset = +08:00)")
    report.add_argument("--last", type=_positive, default=10, help="latest N runs per flow (default 10)")
    report.add_argument("--format", choices=("table", "json"), default="table")

    history = sub.add_parser("history", help="everything that happened to one record")
    history.add_argument("key", help="CRM _id or K3Cloud number (FNumber / bill no)")
    history.add_argument("--limit", type=_positive, default=200, help="at most N rows (default 200)")
    history.add_argument("--format", choices=("table", "json"), default="table")

    sub.add_parser("migrate", help="create or upgrade the audit store's tables (run once per deployment/upgrade)")
    check = sub.add_parser("check", help="validate every mapping file and test the connections before a run")
    check.add_argument("--no-connections", action="store_true", help="mapping files only (no network)")
    fields = sub.add_parser("fields", help="a CRM object's fields in your tenant, against the flow's mapping")
    fields.add_argument("object", help="object api name, e.g. AccountObj, SalesOrderObj, or a custom …__c")
    fields.add_argument("--flow", choices=sorted(FLOWS), help="the flow whose mapping to compare (default: by object)")
    fields.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def use_project_home() -> None:
    """Without $AIRFLOW_HOME (and no explicit store), read this checkout's .airflow/ rather than ~/airflow."""
    if not os.environ.get("AIRFLOW_HOME") and not os.environ.get("SYNC_AUDIT_URL") and PROJECT_HOME.is_dir():
        os.environ["AIRFLOW_HOME"] = str(PROJECT_HOME)


def _open_store(err: TextIO | None = None) -> Any:
    from fxiaoke_k3cloud.audit import AuditStore
    from fxiaoke_k3cloud.audit.engine import display_url, resolve_airflow_url

    url, source = resolve_airflow_url()
    print(f"Audit store: {display_url(url)} (from {source})", file=err or sys.stderr)
    return AuditStore(url)


def suggest_line(api_name: str, field: dict[str, Any]) -> str:
    """A mapping ``fields:`` entry to start from (the K3Cloud target is the implementer's choice)."""
    lines = [f"  # {field.get('label') or api_name} ({field.get('type')}){' — required in the CRM' if field.get('is_required') else ''}",
             "  - target: F<K3Cloud field key>     # e.g. FDescription, or FXxx.FNumber for base data",
             f"    source: {api_name}"]
    if field.get("type") in ("select_one", "select_many"):
        options = ", ".join(f"{o.get('value')}={o.get('label')}" for o in (field.get("options") or [])[:6])
        lines.append(f"    value_map: {api_name.removesuffix('__c').lower()}   # add under value_maps: {options}")
    elif field.get("type") == "date":
        lines.append("    transform: ms_to_date    # CRM epoch ms → 'yyyy-MM-dd' (include/mappings/README.md)")
    elif field.get("type") == "date_time":
        lines.append("    transform: ms_to_datetime")
    elif field.get("type") in ("employee", "department"):
        lines.append("    transform: first         # employee/department fields are lists")
    elif field.get("type") in ("number", "currency"):
        lines.append("    transform: decimal")
    return "\n".join(lines)


def cmd_fields(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Describe ``args.object`` through fxiaoke_default and compare it with the flow's mapping."""
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.mapping import load_mapping
    from fxiaoke_k3cloud.monitor import text

    spec = FLOWS.get(args.flow) if args.flow else next((f for f in FLOWS.values() if f.source_object == args.object), None)
    described = FxiaokeHook().describe(args.object, include_detail=False)
    fields: dict[str, dict[str, Any]] = described.get("fields") or {}
    mapped = set(load_mapping(spec.mapping_path).source.fields or []) if spec is not None else set()
    missing = sorted(mapped - set(fields))
    unmapped_custom = [n for n, f in fields.items() if n not in mapped and f.get("define_type") == "custom"]
    if args.format == "json":
        print(json.dumps({"object": args.object, "flow": spec.name if spec else None, "fields": fields,
                          "mapped": sorted(mapped & set(fields)), "not_in_tenant": missing,
                          "unmapped_custom": unmapped_custom}, ensure_ascii=False, indent=2), file=out)
        return EXIT_OK
    rows = [[n, f.get("label") or "", f.get("type") or "", "yes" if f.get("is_required") else "",
             f.get("define_type") or "", "mapped" if n in mapped else ""] for n, f in sorted(fields.items())]
    print(f"{args.object} in this tenant: {len(fields)} field(s)"
          + (f"; compared with the {spec.name} mapping {spec.mapping_path}" if spec else ""), file=out)
    print("\n".join(text.table(["api name", "label", "type", "required", "kind", "mapping"], rows)), file=out)
    if missing:
        print(f"\nThe mapping reads {len(missing)} field(s) this tenant does not have — replace them (source.fields, "
              "fields:, number_rule) with your tenant's api names from the table above:", file=out)
        for name in missing:
            print(f"  {name}", file=out)
    if unmapped_custom:
        print("\nCustom fields not mapped yet; to sync one, add its api name to source.fields and a line like this "
              "under fields:, then run `check`:", file=out)
        for name in unmapped_custom:
            print(suggest_line(name, fields[name]), file=out)
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Every mapping file, then (unless --no-connections) both connections' own test."""
    from fxiaoke_k3cloud.flows.specs import FLOWS as specs
    from fxiaoke_k3cloud.monitor.console import mapping_problems

    problems = {p["flow"]: p for p in mapping_problems()}
    failed = 0
    for name, spec in specs.items():
        if name in problems:
            failed += 1
            print(f"FAIL  mapping {name}: {problems[name]['message']}", file=out)
        else:
            print(f"ok    mapping {name}: {spec.mapping_path}", file=out)
    if not args.no_connections:
        from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
        from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

        for hook in (FxiaokeHook(), K3CloudHook()):
            conn_id = getattr(hook, hook.conn_name_attr)
            try:
                ok, message = hook.test_connection()
            except Exception as exc:  # noqa: BLE001 - a missing connection is a check result, not a crash
                ok, message = False, f"{type(exc).__name__}: {exc}"
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'}  connection {conn_id}: {message}", file=out)
    print("All checks passed." if not failed else f"{failed} check(s) failed: fix them before the next run.", file=out)
    return EXIT_OK if not failed else EXIT_CHECK


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from fxiaoke_k3cloud.monitor import queries, text

    store = _open_store(err)
    try:
        if queries.store_missing(store):
            print(f"The audit store at {store.url} has no sync runs yet (no flow has run against it).", file=err)
            _empty(args, out)
            return EXIT_OK
        flows = [args.flow] if args.flow else queries.flows_in_store(store)
        runs = queries.list_runs(store, flows, since=args.since, last=args.last)
    finally:
        store.dispose()
    if args.format == "json":
        print(json.dumps([r.as_json() for r in runs], ensure_ascii=False, indent=2, default=_json_default), file=out)
        return EXIT_OK
    if not runs:
        scope = f"flow {args.flow}" if args.flow else "any flow"
        since = f" since {args.since.isoformat()}" if args.since else ""
        print(f"No runs of {scope}{since} in the audit store at {store.url}.", file=out)
        return EXIT_OK
    print(text.runs_table(runs), file=out)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    store = _open_store(err)
    try:
        before = store.schema_revision()
        store.migrate()
        after = store.schema_revision()
    except Exception as exc:  # noqa: BLE001 - any driver error means the store cannot be reached or written
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        raise StoreError(f"cannot migrate the audit store at {store.url}: {type(exc).__name__}: {first}") from None
    finally:
        store.dispose()
    done = "already at" if before == after else f"upgraded from {before or 'an empty database'} to"
    print(f"Audit store at {store.url}: {done} revision {after}.", file=out)
    return EXIT_OK


class StoreError(Exception):
    """The audit store cannot be reached or changed (exit code 1)."""


def cmd_history(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from fxiaoke_k3cloud.monitor import queries, text

    store = _open_store(err)
    try:
        if queries.store_missing(store):
            print(f"The audit store at {store.url} has no sync runs yet (no flow has run against it).", file=err)
            _empty(args, out)
            return EXIT_OK
        rows = queries.record_history(store, args.key, limit=args.limit)
    finally:
        store.dispose()
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=_json_default), file=out)
        return EXIT_OK
    if not rows:
        print(f"Nothing recorded for {args.key!r} (neither a CRM id nor a K3Cloud number in the audit store).", file=out)
        return EXIT_OK
    print(f"History of {args.key} ({len(rows)} outcome(s), newest first):", file=out)
    print(text.history_table(rows), file=out)
    return EXIT_OK


def _empty(args: argparse.Namespace, out: TextIO) -> None:
    # JSON consumers always get a document, even an empty one.
    if args.format == "json":
        print("[]", file=out)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 store unreadable, 2 usage)."""
    from fxiaoke_k3cloud.errors import ConfigError
    from fxiaoke_k3cloud.monitor.queries import StoreUnavailable

    out = out or sys.stdout
    err = err or sys.stderr
    use_project_home()
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:
        print(exc, file=err)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    # The store logs which database it opened; keep stdout for the report, warnings for stderr.
    logging.basicConfig(level=logging.WARNING, stream=err, format="%(levelname)s %(message)s")
    command = {"report": cmd_report, "history": cmd_history, "migrate": cmd_migrate, "check": cmd_check,
               "fields": cmd_fields}[args.command]
    try:
        return command(args, out, err)
    except (StoreUnavailable, ConfigError, StoreError) as exc:
        print(f"error: {exc}", file=err)
        print("Check $SYNC_AUDIT_URL or the Airflow connection 'sync_audit'.", file=err)
        return EXIT_STORE
