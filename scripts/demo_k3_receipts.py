"""What a K3Cloud cashier does before the receipts flow in `make demo`: push audited sale orders to receipt
bills (收款单, the amount still to be received), submit and audit them."""

from __future__ import annotations

import argparse
import logging
import sys

from fxiaoke_k3cloud.errors import ApiError
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
from fxiaoke_k3cloud.hooks.k3cloud_filter import F


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20, help="audited sale orders to receive money for")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, force=True)
    hook = K3CloudHook()
    numbers = [row["FBillNo"] for page in hook.execute_bill_query(
        "SAL_SaleOrder", ["FID", "FBillNo"], F("FDocumentStatus") == "C", page_size=args.count) for row in page]
    receipts = []
    for number in dict.fromkeys(numbers[: args.count]):
        try:
            pushed = hook.push("SAL_SaleOrder", "AR_RECEIVEBILL", "SaleOrder-ReceiveBill", numbers=[number])
        except ApiError:  # nothing left to receive on this order
            continue
        receipts += [t.number for t in pushed.targets]
    if receipts:
        hook.submit("AR_RECEIVEBILL", numbers=receipts)
        hook.audit("AR_RECEIVEBILL", numbers=receipts)
    print(f"  K3Cloud cashier received money for {len(receipts)} sale orders (receipt bills, audited)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
