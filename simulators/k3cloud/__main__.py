"""``python -m simulators.k3cloud --host 127.0.0.1 --port 18802 [--seed-demo N] [--faults JSON]``"""

from __future__ import annotations

import argparse
import json
import os

import uvicorn

from .app import create_app
from .basedata import MATERIAL_NAMES
from .config import SimConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SimConfig()
    p = argparse.ArgumentParser(prog="python -m simulators.k3cloud", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18802)
    p.add_argument("--seed-demo", type=int, default=0,
                   help="accepted for symmetry with the Fxiaoke simulator; base data already holds MAT-0001…MAT-0020")
    p.add_argument("--faults", default="", help="initial fault profile as JSON (see shared/specs/simulators.md)")
    p.add_argument("--acct-id", default=defaults.acct_id)
    p.add_argument("--username", default=defaults.username)
    p.add_argument("--password", default=defaults.password)
    p.add_argument("--app-id", default=defaults.app_id)
    p.add_argument("--app-secret", default=defaults.app_secret)
    p.add_argument("--lcid", type=int, default=defaults.lcid)
    p.add_argument("--verify-api-signature", action="store_true", help="also verify the SDK's X-Api-Signature")
    p.add_argument("--limit-policy", choices=["reject", "clamp"], default=defaults.limit_policy,
                   help="ExecuteBillQuery Limit > 10000: reject with an error (default) or clamp to 10000")
    p.add_argument("--query-pending-polls", type=int, default=0,
                   help="QUERY invoke mode: answer this many polls with Status 1 before the result")
    p.add_argument("--protocol", default=os.environ.get("K3SIM_PROTOCOL", ""),
                   help="protocol switches as JSON, e.g. '{\"omit_empty_keys\": true}' (README; env K3SIM_PROTOCOL)")
    p.add_argument("--workflow-forms", default="",
                   help='forms with a bound workflow as JSON, e.g. \'{"BD_Customer": "submitted"}\' (or "saved")')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = SimConfig(acct_id=args.acct_id, username=args.username, password=args.password, app_id=args.app_id,
                       app_secret=args.app_secret, lcid=args.lcid, verify_api_signature=args.verify_api_signature,
                       limit_policy=args.limit_policy, query_pending_polls=args.query_pending_polls,
                       workflow_forms=json.loads(args.workflow_forms) if args.workflow_forms else {},
                       seed_demo=args.seed_demo, faults=json.loads(args.faults) if args.faults else {})
    config.set_protocol(json.loads(args.protocol) if args.protocol else {})
    app = create_app(config)
    base = f"http://{args.host}:{args.port}/k3cloud/"
    # Development credentials of a local simulator (simulators/README.md), printed on purpose.
    print(f"K3Cloud simulator at {base}", flush=True)
    print(f"  acct_id={config.acct_id} username={config.username} password={config.password} lcid={config.lcid}", flush=True)
    print(f"  app_id={config.app_id} app_secret={config.app_secret}", flush=True)
    print(f"  materials: MAT-0001 … MAT-{len(MATERIAL_NAMES):04d}; orgs 100, 603; admin API under /_sim/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
