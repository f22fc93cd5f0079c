"""Request options of K3CloudHook's verbs by their K3Cloud names, and the Ids/Numbers rule (spec §3.3–3.9, §7.10)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

SAVE_OPTIONS = frozenset({
    "NeedUpDateFields", "NeedReturnFields", "IsDeleteEntry", "SubSystemId", "IsVerifyBaseDataField",
    "IsEntryBatchFill", "ValidateFlag", "NumberSearch", "IsAutoAdjustField", "InterationFlags",
    "IgnoreInterationFlag", "IsControlPrecision", "ValidateRepeatJson", "IsAutoSubmitAndAudit", "Creator",
})
BATCH_SAVE_OPTIONS = SAVE_OPTIONS | {"BatchCount"}
STATE_OPTIONS = frozenset({
    "CreateOrgId", "UseOrgId", "NetworkCtrl", "IsVerifyProcInst", "InterationFlags", "IgnoreInterationFlag",
    "UseBatControlTimes", "SelectedPostId",
})
VIEW_OPTIONS = frozenset({"CreateOrgId", "IsSortBySeq"})
PUSH_OPTIONS = frozenset({"TargetBillTypeId", "TargetOrgId", "IsEnableDefaultRule", "IsDraftWhenSaveFail", "CustomParams"})
OP_NUMBER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
OPERATION_OPTIONS = frozenset({"CreateOrgId", "UseOrgId", "NetworkCtrl", "IgnoreInterationFlag", "PkEntryIds", "Parameters"})


def check_options(given: Mapping[str, Any], allowed: frozenset[str], service: str) -> dict[str, Any]:
    """Request options by their K3Cloud names; a typo fails loudly instead of being ignored by the server."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"unknown {service} option(s) {unknown}; allowed: {sorted(allowed)}")
    return dict(given)


def ids_or_numbers(numbers: Sequence[str] | None, ids: Sequence[int] | None) -> dict[str, Any]:
    """``Numbers`` as an array of strings, ``Ids`` as a comma string (an array for Ids fails, spec §7.10)."""
    if (numbers is None) == (ids is None):
        raise ValueError("pass exactly one of numbers= or ids=")
    if numbers is not None:
        if isinstance(numbers, str) or not all(isinstance(n, str) for n in numbers):
            raise TypeError("numbers must be a list of strings (numbers keep their leading zeros)")
        return {"Numbers": list(numbers), "Ids": ""}
    if isinstance(ids, str) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids or ()):
        raise TypeError("ids must be a list of ints")
    return {"Numbers": [], "Ids": ",".join(str(i) for i in ids or ())}
