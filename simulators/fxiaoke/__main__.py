"""``python -m simulators.fxiaoke --host 127.0.0.1 --port 18801 [--seed-demo N] [--faults JSON]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import uvicorn

from .app import create_app
from .config import (
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_CORP_ID,
    DEFAULT_DEMO_BASE_MS,
    DEFAULT_MOBILE,
    DEFAULT_OPEN_USER_ID,
    DEFAULT_PERMANENT_CODE,
    SimConfig,
    Switches,
)
from .faults import FaultProfileError, Faults
from .clock import Clock


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m simulators.fxiaoke", description="Fxiaoke OpenAPI simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18801)
    p.add_argument("--app-id", default=DEFAULT_APP_ID)
    p.add_argument("--app-secret", default=DEFAULT_APP_SECRET)
    p.add_argument("--permanent-code", default=DEFAULT_PERMANENT_CODE)
    p.add_argument("--corp-id", default=DEFAULT_CORP_ID)
    p.add_argument("--open-user-id", default=DEFAULT_OPEN_USER_ID, help="the CRM admin's open user id")
    p.add_argument("--mobile", default=DEFAULT_MOBILE, help="the admin's mobile, resolvable via getByMobile")
    p.add_argument("--seed-demo", type=int, default=0, metavar="N", help="add N generated customers with orders")
    p.add_argument("--demo-base-ms", type=int, default=DEFAULT_DEMO_BASE_MS,
                   help="epoch ms the demo records are stamped from (default 2025-01-01 00:00 +08:00)")
    p.add_argument("--faults", default="{}", metavar="JSON", help="fault profile (see simulators.md)")
    p.add_argument("--strict-limit", action="store_true", help="limit > 100 is a parameter error instead of clamped")
    p.add_argument("--strict-prefix", action="store_true", help="objects on the wrong /custom/ prefix are errors")
    p.add_argument("--duplicate-rule", action="store_true", help="AccountObj create rejects duplicate names")
    p.add_argument("--id-format", choices=["hex32", "hex24"], default="hex32",
                   help="_id shape of new records: 32 hex (default) or the 24-hex ObjectId form")
    p.add_argument("--exclude-invalid", action="store_true",
                   help="queries without a life_status filter leave voided (invalid) rows out")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="info logs one line per API call: path, errorCode, traceId (never credentials)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        faults = json.loads(args.faults)
        Faults(faults, Clock(), "check")
    except (ValueError, FaultProfileError) as exc:
        sys.exit(f"--faults: {exc}")
    config = SimConfig(
        app_id=args.app_id, app_secret=args.app_secret, permanent_code=args.permanent_code, corp_id=args.corp_id,
        open_user_id=args.open_user_id, mobile=args.mobile, seed_demo=args.seed_demo,
        demo_base_ms=args.demo_base_ms, faults=faults,
        switches=Switches(strict_limit=args.strict_limit, strict_prefix=args.strict_prefix,
                          duplicate_rule=args.duplicate_rule, id_format=args.id_format,
                          query_includes_invalid=not args.exclude_invalid),
    )
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(config)
    # Development credentials of a local simulator, printed on purpose (simulators.md); not secrets.
    print(f"Fxiaoke simulator on http://{args.host}:{args.port}", flush=True)
    print(f"  appId={config.app_id} appSecret={config.app_secret} permanentCode={config.permanent_code}", flush=True)
    print(f"  corpId={config.corp_id} openUserId={config.open_user_id} mobile={config.mobile}", flush=True)
    if config.seed_demo:
        print(f"  demo customers: {config.seed_demo}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
