"""What a K3Cloud user does between the orders flow and the deliveries flow in `make demo`:
submit and audit some synced sale orders, then push them to delivery notices and audit those."""

from __future__ import annotations

import argparse
import logging
import sys

from demo_deliveries import create_demo_deliveries

from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.hooks.k3cloud_filter import F


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20, help="orders to audit and ship")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, force=True)
    hook = K3CloudHook()
    numbers = [row["FBillNo"] for page in hook.execute_bill_query(
        "SAL_SaleOrder", ["FID", "FBillNo"], F("FDocumentStatus") == "A", page_size=args.count) for row in page]
    numbers = numbers[: args.count]
    if numbers:
        hook.submit("SAL_SaleOrder", numbers=numbers)
        hook.audit("SAL_SaleOrder", numbers=numbers)
    notices = create_demo_deliveries(hook, len(numbers))
    print(f"  K3Cloud user audited {len(numbers)} sale orders and shipped {len(notices)} delivery notices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
