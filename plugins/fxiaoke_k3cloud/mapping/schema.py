"""The mapping file vocabulary: closed, typed pydantic models (``extra="forbid"``, strict types everywhere).

Every model rejects unknown keys with the list of allowed ones and every field has a title and an example, so
the models double as the reference of ``include/mappings/README.md``. Cross-references (template paths, value
map and lookup names) are checked by :mod:`.loader` after these models parse.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .strict import Strict, TransformCall, TransformChain, as_chain, scalar_only  # noqa: F401 - Strict, TransformCall: also public here

MASTER_PREFIX = "master."  # in entries.fields, a source spelled master.<field> reads the master record
OnMissing = Literal["reject", "park"]
# What happens in K3Cloud when a synced CRM record is voided / deleted (see include/mappings/README.md).
SourceAction = Literal["report", "forbid", "cancel", "close"]
BASE_DATA_ACTIONS = ("report", "forbid")  # base data (BD_… forms) is forbidden (禁用), never cancelled
BILL_ACTIONS = ("report", "cancel", "close")  # bills: Cancel when unaudited, CloseBill when audited


class FieldMap(Strict):
    """One mapped field: a source field, optional transforms, value map or lookup, into one template path."""

    source: str = Field(title="Source field", examples=["field_n5V1I__c"],
                        description="source field api name (preset or field_…__c); in entries, master.<field> reads the master record")
    target: str = Field(title="Target path", description="path into the template", examples=["FCustTypeId.FNumber"])
    transform: TransformChain = Field(title="Transforms", description="one name, {name, args…}, or a list of them",
                                      examples=["strip", {"name": "truncate", "max": 80}])
    required: bool = Field(False, title="Required", description="reject the record when the value is empty")
    value_map: str | None = Field(None, title="Value map", description="name of a dictionary under value_maps", examples=["customer_types"])
    default: Any = Field(None, title="Default", description="target value used when the source is empty", examples=["KHLB001_SYS"])
    lookup: str | None = Field(None, title="Lookup", description="name of a lookup under lookups", examples=["customers"])
    on_missing: OnMissing | None = Field(None, title="When the lookup has no entry", description="reject or park the record")
    max_length: int | None = Field(None, gt=0, title="Max length", description="reject text longer than this", examples=[80])
    max_digits: int | None = Field(None, gt=0, le=60, title="Max digits",
                                   description="numbers: total significant digits allowed (default: defaults.max_digits)",
                                   examples=[23])
    scale: int | None = Field(None, ge=0, le=30, title="Scale",
                              description="numbers: decimal places allowed (default: defaults.scale)", examples=[10])

    @field_validator("transform", mode="before")
    @classmethod
    def _transform_chain(cls, value: Any) -> Any:
        return as_chain(value)

    @model_validator(mode="after")
    def _digits(self) -> FieldMap:
        if self.max_digits is not None and self.scale is not None and self.scale > self.max_digits:
            raise PydanticCustomError("scale_over_digits", "scale must not exceed max_digits", {"key": "scale"})
        return self

    @field_validator("default")
    @classmethod
    def _default_scalar(cls, value: Any) -> Any:
        return scalar_only(value)

    @model_validator(mode="after")
    def _consistent(self) -> FieldMap:
        if self.on_missing is not None and self.lookup is None:
            raise PydanticCustomError("on_missing_without_lookup", "on_missing only applies to a field with a lookup", {"key": "on_missing"})
        if self.lookup is not None and self.value_map is not None:
            raise PydanticCustomError("lookup_and_value_map", "use either value_map or lookup, not both", {"key": "lookup"})
        return self


class Check(Strict):
    """A source field that is validated but not sent: a bad value rejects the record, a good one changes nothing."""

    source: str = Field(title="Source field", examples=["order_amount"])
    transform: TransformChain = Field(title="Transforms", examples=["non_negative"])
    required: bool = Field(False, title="Required", description="reject the record when the value is empty")
    max_digits: int | None = Field(None, gt=0, le=60, title="Max digits", examples=[23])
    scale: int | None = Field(None, ge=0, le=30, title="Scale", examples=[10])

    @field_validator("transform", mode="before")
    @classmethod
    def _transform_chain(cls, value: Any) -> Any:
        return as_chain(value)


class Defaults(Strict):
    """Settings shared by the whole file instead of repeating them per field."""

    org: str = Field("100", title="Default org number", description="create/use org when org: does not say", examples=["100"])
    timezone: str = Field("Asia/Shanghai", title="Timezone", description="for ms ⇄ date conversions", examples=["Asia/Shanghai"])
    strip_text: bool = Field(True, title="Strip text", description="trim all text values; whitespace-only counts as empty")
    on_missing: OnMissing = Field("reject", title="Lookup miss", description="default on_missing for lookup fields")
    control_chars: Literal["reject", "strip"] = Field(
        "reject", title="Control characters",
        description="text with control characters (NUL, ESC…; tab and newlines are allowed): reject the record or strip them")
    max_digits: int = Field(23, gt=0, le=60, title="Max digits",
                            description="numbers: significant digits allowed (K3Cloud stores decimal(23,10))", examples=[23])
    scale: int = Field(10, ge=0, le=30, title="Scale", description="numbers: decimal places allowed", examples=[10])

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError("bad_timezone", "unknown timezone '{tz}'; e.g. Asia/Shanghai", {"tz": value}) from None
        return value


class Source(Strict):
    """Where records come from."""

    system: Literal["fxiaoke", "k3cloud"] = Field("fxiaoke", title="Source system")
    object: str = Field(title="Object / form", description="CRM object api name or K3Cloud form id", examples=["AccountObj"])
    id_field: str = Field("_id", title="Id field", examples=["_id"])
    name_field: str = Field("name", title="Display-name field", description="shown in rejection messages", examples=["name"])
    modified_field: str | None = Field(None, title="Modified-time field", examples=["last_modified_time"])
    fields: list[str] | None = Field(None, title="Field projection", description="fields to extract (default: all)")


class Target(Strict):
    """Where packages go."""

    system: Literal["k3cloud", "fxiaoke"] = Field("k3cloud", title="Target system")
    form_id: str | None = Field(None, title="K3Cloud form id", examples=["BD_Customer"])
    object: str | None = Field(None, title="CRM object api name", examples=["DeliveryNoteObj"])
    pk: str = Field(title="Primary key of the target", examples=["FCUSTID"])
    number: str = Field(title="Business number key of the target", examples=["FNumber"])
    on_target_missing: Literal["recreate", "report"] = Field(
        "recreate", title="When the linked document is gone",
        description="a document the id map links to but the target no longer has (deleted by hand, restored "
                    "database): create it again, or report the record and leave it to a person")
    on_renumber: Literal["renumber", "report"] = Field(
        "renumber", title="When the source changes the number",
        description="the number of an already linked record changed in the source: change it on the linked "
                    "document (kept by id), or report the record and leave both numbers as they are")

    @model_validator(mode="after")
    def _one_name(self) -> Target:
        want = "form_id" if self.system == "k3cloud" else "object"
        other = "object" if want == "form_id" else "form_id"
        if getattr(self, want) is None:
            raise PydanticCustomError("missing_target_name", "a {system} target needs {want}", {"system": self.system, "want": want, "key": want})
        if getattr(self, other) is not None:
            raise PydanticCustomError("wrong_target_name", "{other} does not apply to a {system} target; use {want}",
                                      {"system": self.system, "want": want, "other": other, "key": other})
        return self

    @property
    def name(self) -> str:
        return self.form_id or self.object or ""


class LifeStatus(Strict):
    """Which record states are written (push), reported (e.g. voided) or held back until they change."""

    field: str = Field("life_status", title="Status field", examples=["life_status"])
    push: list[str] = Field(title="Pushed", min_length=1, examples=[["normal"]])
    report: list[str] = Field(default_factory=list, title="Reported", examples=[["invalid"]])
    hold: list[str] = Field(default_factory=list, title="Held", examples=[["ineffective", "under_review", "in_change"]])
    unlisted: Literal["reject", "hold"] = Field("reject", title="Any other value")

    @model_validator(mode="after")
    def _disjoint(self) -> LifeStatus:
        for a, b in (("push", "report"), ("push", "hold"), ("report", "hold")):
            both = set(getattr(self, a)) & set(getattr(self, b))
            if both:
                raise PydanticCustomError("overlap", "'{value}' is listed in both {a} and {b}", {"value": sorted(both)[0], "a": a, "b": b, "key": b})
        return self


class SaveOptions(Strict):
    """K3Cloud Save/BatchSave options (k3cloud-webapi §3.3); unset options keep the server default."""

    IsAutoSubmitAndAudit: bool | None = Field(None, examples=[True])
    IsVerifyBaseDataField: bool | None = Field(None, examples=[True])
    IsDeleteEntry: bool | None = None
    IsEntryBatchFill: bool | None = None
    ValidateFlag: bool | None = None
    NumberSearch: bool | None = None
    IsAutoAdjustField: bool | None = None
    InterationFlags: str | None = Field(None, examples=["STK_InvCheckResult"])
    IgnoreInterationFlag: bool | None = None
    IsControlPrecision: bool | None = None
    ValidateRepeatJson: bool | None = None
    SubSystemId: str | None = None
    NeedReturnFields: list[str] | None = Field(None, examples=[["FNumber"]])
    BatchCount: int | None = Field(None, gt=0)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class NumberRule(Strict):
    """Which source field becomes the target's business number (always required)."""

    source: str = Field(title="Source field", examples=["field_fnfcA__c"])
    transform: TransformChain = Field(title="Transforms", examples=[["strip", "upper"]])
    max_length: int | None = Field(None, gt=0, examples=[30])

    @field_validator("transform", mode="before")
    @classmethod
    def _transform_chain(cls, value: Any) -> Any:
        return as_chain(value)


class Org(Strict):
    """Organisation numbers written into the template (not into update payloads)."""

    create: str | None = Field(None, title="Create org number", description="default: defaults.org", examples=["100"])
    use: str | None = Field(None, title="Use org number", description="default: the create org", examples=["100"])
    create_fields: list[str] = Field(default_factory=list, title="Paths receiving the create org", examples=[["FCreateOrgId.FNumber"]])
    use_fields: list[str] = Field(default_factory=list, title="Paths receiving the use org", examples=[["FUseOrgId.FNumber"]])
    entry_fields: list[str] = Field(default_factory=list, title="Entry-row paths receiving the use org",
                                    examples=[["FStockOrgId.FNumber", "FOwnerId.FNumber"]])


class Lookup(Strict):
    """A key → value table built at transform time (e.g. CRM account _id → K3 customer number).

    With ``flow`` the pipeline builds it for any mapping (header-only or with entries) from that flow's id map:
    the keys are the values of the source fields that name this lookup, the values the K3Cloud numbers the
    flow wrote; a key the id map lacks is synced through that flow first (step ``sync_dependencies``). Without
    ``flow`` the table comes from the flow's own module (its ``lookups`` hook, e.g. the orders' materials).
    """

    title: str | None = Field(None, examples=["CRM account _id → K3Cloud customer number"])
    entity: str = Field(title="What the value is", description="used in parked/rejected messages", examples=["customer"])
    key_label: str = Field(title="What the key is", examples=["account"])
    label_field: str | None = Field(None, title="Display field", description="source column shown instead of the key", examples=["product_code"])
    flow: str | None = Field(None, title="Resolved through the id map of this flow",
                             description="a registry flow name; records it lacks are synced first", examples=["customers"])
    usable: bool = Field(True, title="Only base data usable in the org",
                         description="with flow: keep only numbers audited, not forbidden and allocated to the org "
                                     "the mapping writes in (else the record parks until they are)")
    on_missing: OnMissing | None = Field(None, title="When a key has no value",
                                         description="default on_missing of the fields using this lookup", examples=["park"])


class EntrySource(Strict):
    """Where entry rows come from (CRM detail object rows linked to their master)."""

    object: str = Field(title="Detail object", examples=["SalesOrderProductObj"])
    id_field: str = Field("_id", examples=["_id"])
    parent_field: str = Field(title="Field holding the master id", examples=["order_id"])
    fields: list[str] | None = Field(None, title="Field projection")


class Entries(Strict):
    """A multi-row entity of the target (e.g. FSaleOrderEntry) filled from detail rows."""

    entity: str = Field(title="Entity key in the template", examples=["FSaleOrderEntry"])
    source: EntrySource
    template: dict[str, Any] = Field(title="One complete row")
    fields: list[FieldMap] = Field(min_length=1)
    min_rows: int = Field(1, ge=0, title="Reject masters with fewer rows")
    entry_pk: str | None = Field(None, title="Entry id key", description="default: the row key spelled FEntryID in any case", examples=["FEntryID"])


class StatusLabels(Strict):
    """What the CRM is told for each K3Cloud document state (FDocumentStatus, FCloseStatus, FCancelStatus)."""

    saved: str = Field("已保存", title="Saved (FDocumentStatus Z/A/D)", examples=["已保存"])
    submitted: str = Field("审核中", title="Submitted (FDocumentStatus B)", examples=["审核中"])
    audited: str = Field("已审核", title="Audited (FDocumentStatus C)", examples=["已审核"])
    closed: str = Field("已关闭", title="Closed (FCloseStatus B); final", examples=["已关闭"])
    cancelled: str = Field("已作废", title="Cancelled (FCancelStatus B); final", examples=["已作废"])
    forbidden: str = Field("已禁用", title="Forbidden base data (FForbidStatus B)", examples=["已禁用"])


MAX_REFRESH_MINUTES = 24 * 60  # write_back.refresh_every_minutes: a status change reaches the CRM within a day at worst


class WriteBack(Strict):
    """After a record lands in K3Cloud: which CRM fields of the source record get its number and status."""

    enabled: bool = Field(True, title="On/off", examples=[True])
    number_field: str | None = Field(None, title="CRM field receiving the K3Cloud number", examples=["field_k3_bill_no__c"])
    status_field: str | None = Field(None, title="CRM field receiving the K3Cloud status label",
                                     description="refreshed (every refresh_every_minutes) until the document is closed or cancelled",
                                     examples=["field_k3_status__c"])
    only_if_empty: bool = Field(False, title="Write the number only where the CRM field is empty",
                                description="never overwrite a number the CRM holds", examples=[True])
    held_in: list[str] = Field(default_factory=list, title="CRM fields that may already hold the number",
                               description="when one of them holds exactly the K3Cloud number, nothing is written",
                               examples=[["field_fnfcA__c"]])
    status_labels: StatusLabels = Field(default_factory=StatusLabels)
    refresh_every_minutes: int = Field(
        60, title="Status refresh period (minutes)",
        description="with status_field: the K3Cloud statuses of open records are read once per period of this many "
                    "minutes (periods counted from 00:00 UTC: 60 = the first run of each hour), and at once by a run "
                    "that loaded records or has a record to write back for the first time; 0 = every run; at most "
                    f"{MAX_REFRESH_MINUTES} (a day)",
        examples=[60, 0])

    @field_validator("refresh_every_minutes", mode="before")
    @classmethod
    def _refresh_minutes(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REFRESH_MINUTES:
            raise PydanticCustomError(
                "write_back_refresh", "a whole number of minutes from 0 (every run) to {most} (a day), "
                                      "e.g. 60 (hourly); got {got}", {"most": MAX_REFRESH_MINUTES, "got": repr(value)})
        return value

    @model_validator(mode="after")
    def _something(self) -> WriteBack:
        if not (self.number_field or self.status_field):
            raise PydanticCustomError("write_back_empty", "name number_field, status_field or both")
        if self.number_field and self.number_field == self.status_field:
            raise PydanticCustomError("write_back_same", "number_field and status_field must differ")
        return self


class FlowMapping(Strict):
    """One flow's mapping file."""

    version: Literal[1] = Field(title="Format version")
    title: str | None = None
    description: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    source: Source
    target: Target
    life_status: LifeStatus | None = None
    save_options: SaveOptions = Field(default_factory=SaveOptions)
    number_rule: NumberRule
    org: Org | None = None
    lookups: dict[str, Lookup] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    template: dict[str, Any] = Field(title="The complete target package Model")
    fields: list[FieldMap] = Field(min_length=1)
    checks: list[Check] = Field(default_factory=list, title="Checked, not sent",
                                description="source fields validated like fields but never written to the target")
    entries: Entries | None = None
    on_source_void: SourceAction = Field(
        "report", title="When a synced CRM record is voided",
        description="report (default): an outcome asks for action in K3Cloud; forbid: 禁用 the base data (BD_… "
                    "forms); cancel / close: Cancel an unaudited bill, CloseBill an audited one",
        examples=["forbid"])
    on_source_delete: SourceAction = Field(
        "report", title="When a synced CRM record is deleted", description="same choices as on_source_void",
        examples=["cancel"])
    write_back: WriteBack | None = Field(None, title="Write the K3Cloud number/status back to the CRM record")

    _file: str = PrivateAttr(default="")
    _compiled: Any = PrivateAttr(default=None)  # the engine's precompiled plan, built on first use

    @field_validator("value_maps")
    @classmethod
    def _map_values(cls, maps: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, table in maps.items():
            for key, value in table.items():
                if value is None or not isinstance(value, (str, int, float, bool)):
                    raise PydanticCustomError("not_scalar", "a value map entry must be text or a number",
                                              {"key": f"{name}.{key}"})
        return maps

    @model_validator(mode="after")
    def _source_actions(self) -> FlowMapping:
        base_data = (self.target.form_id or "").upper().startswith("BD_")
        for key in ("on_source_void", "on_source_delete"):
            action = getattr(self, key)
            if action == "report":
                continue
            if self.target.system != "k3cloud":
                raise PydanticCustomError(
                    "source_action_target", "'{action}' acts on K3Cloud documents; a {system} target allows only "
                    "'report'", {"action": action, "system": self.target.system, "key": key})
            allowed = BASE_DATA_ACTIONS if base_data else BILL_ACTIONS
            if action not in allowed:
                kind = "base data" if base_data else "a bill"
                raise PydanticCustomError(
                    "source_action_form", "'{action}' does not apply to {form} ({kind}); allowed: {allowed}",
                    {"action": action, "form": self.target.form_id, "kind": kind, "allowed": ", ".join(allowed),
                     "key": key})
        return self

    @model_validator(mode="after")
    def _write_back_unmapped(self) -> FlowMapping:
        # A written-back field that is also mapped to K3Cloud would change the package it came from: a loop.
        wb = self.write_back
        mapped = {self.number_rule.source, *(f.source for f in self.fields), *(c.source for c in self.checks)}
        if self.entries:
            mapped |= {f.source.removeprefix(MASTER_PREFIX) for f in self.entries.fields}
        for key in ("number_field", "status_field"):
            name = getattr(wb, key) if wb else None
            if name and name in mapped:
                raise PydanticCustomError("write_back_mapped", "{field} is mapped to K3Cloud; a written-back field "
                                          "must not be (the write-back would change the package: a loop)",
                                          {"field": name, "key": f"write_back.{key}"})
        return self

    @property
    def file(self) -> str:
        """The file this mapping was loaded from ('' when built in code)."""
        return self._file
