"""Object describes: the preset objects a CRM→ERP sync needs, one custom object, and their field types.

The field types drive validation on write and comparison in the query engine (spec §3.9 value types).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NUMERIC_TYPES = frozenset({"number", "currency", "percentile", "date", "date_time", "count"})
TIME_TYPES = frozenset({"date", "date_time"})
LIST_TYPES = frozenset({"employee", "department", "select_many", "embedded_object_list"})
REFERENCE_TYPES = frozenset({"object_reference", "master_detail"})
BOOL_TYPES = frozenset({"true_or_false"})

LIFE_STATUS_LABELS = {
    "normal": "正常",
    "ineffective": "未生效",
    "under_review": "审核中",
    "in_change": "变更中",
    "invalid": "作废",
}


@dataclass(frozen=True)
class FieldDef:
    api_name: str
    label: str
    type: str
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    target: str | None = None  # object apiName of a lookup / master-detail field
    custom: bool = False
    system: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "api_name": self.api_name,
            "label": self.label,
            "type": self.type,
            "is_required": self.required,
            "define_type": "custom" if self.custom else ("system" if self.system else "package"),
            "is_active": True,
        }
        if self.options:
            out["options"] = [{"value": v, "label": lbl} for v, lbl in self.options]
        if self.type in ("currency", "number"):
            out["decimal_places"] = 2
        if self.type in TIME_TYPES:
            out["date_format"] = "yyyy-MM-dd" if self.type == "date" else "yyyy-MM-dd HH:mm"
            out["time_zone"] = "GMT+8"
        if self.target:
            out["target_api_name"] = self.target
        return out


@dataclass(frozen=True)
class ObjectDef:
    api_name: str
    label: str
    fields: dict[str, FieldDef]
    master_field: str | None = None  # detail objects: the field pointing at the master record
    name_prefix: str | None = None  # auto-numbered names (orders, payments)

    @property
    def custom(self) -> bool:
        return self.api_name.endswith("__c")

    def describe(self) -> dict[str, Any]:
        return {
            "api_name": self.api_name,
            "display_name": self.label,
            "label": self.label,
            "define_type": "custom" if self.custom else "package",
            "is_active": True,
            "fields": {name: f.describe() for name, f in self.fields.items()},
        }


def _f(api_name: str, label: str, type_: str, required: bool = False, **kw: Any) -> FieldDef:
    return FieldDef(api_name, label, type_, required, **kw)


LIFE_STATUS_OPTIONS = tuple(LIFE_STATUS_LABELS.items())

SYSTEM_FIELDS: tuple[FieldDef, ...] = (
    _f("_id", "ID", "text", system=True),
    _f("owner", "负责人", "employee", system=True),
    _f("owner_department_id", "负责人主属部门ID", "text", system=True),
    _f("owner_department", "负责人主属部门", "text", system=True),
    _f("created_by", "创建人", "employee", system=True),
    _f("create_time", "创建时间", "date_time", system=True),
    _f("last_modified_by", "最后修改人", "employee", system=True),
    _f("last_modified_time", "最后修改时间", "date_time", system=True),
    _f("life_status", "生命状态", "select_one", options=LIFE_STATUS_OPTIONS, system=True),
    _f("lock_status", "锁定状态", "select_one", options=(("0", "未锁定"), ("1", "锁定")), system=True),
    _f("is_deleted", "是否删除", "true_or_false", system=True),
    _f("record_type", "业务类型", "record_type", options=(("default__c", "预设业务类型"),), system=True),
    _f("version", "版本", "text", system=True),
    _f("data_own_department", "归属部门", "department", system=True),
    _f("relevant_team", "相关团队", "embedded_object_list", system=True),
    _f("extend_obj_data_id", "扩展数据ID", "text", system=True),
    _f("object_describe_api_name", "对象API名", "text", system=True),
)
SYSTEM_FIELD_NAMES = frozenset(f.api_name for f in SYSTEM_FIELDS)


def _object(api_name: str, label: str, *own: FieldDef, master_field: str | None = None,
            name_prefix: str | None = None, name_required: bool = True) -> ObjectDef:
    name = _f("name", "编号" if name_prefix else "名称", "auto_number" if name_prefix else "text",
              required=name_required and not name_prefix)
    fields = {f.api_name: f for f in (SYSTEM_FIELDS[0], name, *own, *SYSTEM_FIELDS[1:])}
    return ObjectDef(api_name, label, fields, master_field, name_prefix)


ACCOUNT = _object(
    "AccountObj", "客户",
    _f("account_no", "客户编号", "text"),
    _f("account_type", "客户类型", "select_one", options=(("1", "终端客户"), ("2", "经销商"), ("3", "其他"))),
    _f("account_level", "客户级别", "select_one", options=(("A", "重要客户"), ("B", "普通客户"), ("C", "一般客户"))),
    _f("account_source", "来源", "select_one", options=(("1", "电话营销"), ("2", "客户介绍"), ("3", "展会"))),
    _f("tel", "电话", "phone_number"),
    _f("fax", "传真", "text"),
    _f("email", "邮件", "email"),
    _f("url", "网址", "url"),
    _f("address", "详细地址", "text"),
    _f("country", "国家", "text"),
    _f("province", "省", "text"),
    _f("city", "市", "text"),
    _f("remark", "备注", "long_text"),
    _f("field_fnfcA__c", "K3客户编码", "text", custom=True),
    _f("field_n5V1I__c", "客户类别编码", "select_one", custom=True,
       options=(("KHLB001_SYS", "普通销售客户"), ("KHLB002_SYS", "寄售客户"))),
    _f("field_IdOci__c", "客户分组编码", "select_one", custom=True, options=(("01", "直销客户"), ("02", "渠道客户"))),
    _f("field_zW12m__c", "联系人", "text", custom=True),
    _f("field_G45nC__c", "手机", "phone_number", custom=True),
    _f("field_k3_number__c", "K3客户编号(回写)", "text", custom=True),
)

CONTACT = _object(
    "ContactObj", "联系人",
    _f("account_id", "客户名称", "object_reference", target="AccountObj"),
    _f("mobile1", "手机1", "phone_number"),
    _f("tel1", "电话1", "phone_number"),
    _f("email", "邮件", "email"),
    _f("company", "公司", "text"),
    _f("remark", "备注", "long_text"),
)

PRODUCT = _object(
    "ProductObj", "产品",
    _f("product_code", "产品编码", "text", required=True),
    _f("product_spec", "规格", "text"),
    _f("unit", "单位", "select_one", options=(("个", "个"), ("件", "件"), ("套", "套"), ("箱", "箱"),
                                             ("米", "米"), ("千克", "千克"), ("台", "台"))),
    _f("price", "标准价格", "currency"),
    _f("category", "产品分类", "text"),
    _f("product_status", "上下架", "select_one", options=(("1", "已上架"), ("2", "已下架"))),
    _f("remark", "备注", "long_text"),
)

SALES_ORDER = _object(
    "SalesOrderObj", "销售订单",
    _f("account_id", "客户名称", "object_reference", required=True, target="AccountObj"),
    _f("order_amount", "销售订单金额", "currency"),
    _f("order_time", "下单日期", "date"),
    _f("delivery_date", "交货日期", "date"),
    _f("discount", "整单折扣", "percentile"),
    _f("ship_to_add", "收货地址", "text"),
    _f("ship_to_tel", "收货人电话", "phone_number"),
    _f("order_status", "状态", "select_one", options=(("6", "确认中"), ("7", "已确认"), ("10", "已发货"))),
    _f("payment_amount", "已回款金额", "currency"),  # roll-up of the order's payment lines (rollup.py)
    _f("receivable_amount", "待回款金额", "currency"),
    _f("remark", "备注", "long_text"),
    _f("field_k3_bill_no__c", "K3单据编号(回写)", "text", custom=True),
    _f("field_k3_status__c", "K3单据状态(回写)", "text", custom=True),
    name_prefix="SO",
)

SALES_ORDER_PRODUCT = _object(
    "SalesOrderProductObj", "订单产品",
    _f("order_id", "销售订单编号", "master_detail", required=True, target="SalesOrderObj"),
    _f("product_id", "产品名称", "object_reference", required=True, target="ProductObj"),
    _f("quantity", "数量", "number", required=True),
    _f("sales_price", "销售单价", "currency"),
    _f("product_price", "价格", "currency"),
    _f("discount", "折扣", "percentile"),
    _f("subtotal", "小计", "currency"),
    _f("unit", "单位", "text"),
    _f("remark", "备注", "long_text"),
    master_field="order_id", name_prefix="SOP",
)

WAREHOUSE = _object(
    "WarehouseObj", "仓库",
    _f("number", "仓库编号", "text"),
    _f("is_default", "是否默认仓", "true_or_false"),
    _f("address", "详细地址", "text"),
    _f("remark", "备注", "long_text"),
)

DELIVERY_NOTE = _object(
    "DeliveryNoteObj", "发货单",
    _f("sales_order_id", "销售订单编号", "object_reference", required=True, target="SalesOrderObj"),
    _f("account_id", "客户名称", "object_reference", target="AccountObj"),
    _f("delivery_warehouse_id", "发货仓库", "object_reference", target="WarehouseObj"),
    _f("delivery_date", "发货日期", "date"),
    _f("express_org", "物流公司", "text"),
    _f("express_order_id", "物流单号", "text"),
    _f("total_delivery_money", "发货总金额", "currency"),
    _f("status", "状态", "select_one", options=(("1", "未收货"), ("2", "已收货"))),
    _f("remark", "备注", "long_text"),
    name_prefix="DN",
)

DELIVERY_NOTE_PRODUCT = _object(
    "DeliveryNoteProductObj", "发货单产品",
    _f("delivery_note_id", "发货单编号", "master_detail", required=True, target="DeliveryNoteObj"),
    _f("sales_order_id", "销售订单编号", "object_reference", target="SalesOrderObj"),
    _f("sales_order_product_id", "订单产品", "object_reference", target="SalesOrderProductObj"),
    _f("product_id", "产品名称", "object_reference", required=True, target="ProductObj"),
    _f("delivery_num", "本次发货数", "number", required=True),
    _f("unit", "单位", "text"),
    _f("avg_price", "平均单价", "currency"),
    _f("delivery_money", "发货金额", "currency"),
    _f("remark", "备注", "long_text"),
    master_field="delivery_note_id", name_prefix="DNP",
)

PAYMENT = _object(
    "PaymentObj", "回款",
    _f("account_id", "客户名称", "object_reference", required=True, target="AccountObj"),
    _f("order_id", "销售订单编号", "object_reference", target="SalesOrderObj"),
    _f("payment_amount", "回款金额", "currency"),
    _f("payment_time", "回款日期", "date"),
    _f("payment_term", "回款方式", "select_one", options=(("1", "支票"), ("2", "现金"), ("3", "银行转账"))),
    _f("remark", "备注", "long_text"),
    name_prefix="PAY",
)

ORDER_PAYMENT = _object(
    "OrderPaymentObj", "回款明细",
    _f("payment_id", "回款编号", "master_detail", required=True, target="PaymentObj"),
    _f("order_id", "销售订单编号", "object_reference", target="SalesOrderObj"),
    _f("account_id", "客户名称", "object_reference", target="AccountObj"),
    _f("payment_amount", "本次回款金额", "currency"),
    master_field="payment_id", name_prefix="OP",
)

DEMO_CUSTOM = _object(
    "object_demo__c", "演示自定义对象",
    _f("field_text1__c", "文本", "text", custom=True),
    _f("field_num1__c", "数字", "number", custom=True),
    _f("field_tags__c", "标签", "select_many", custom=True, options=(("a", "甲"), ("b", "乙"), ("c", "丙"))),
    _f("field_flag__c", "启用", "true_or_false", custom=True),
    _f("field_account__c", "客户", "object_reference", custom=True, target="AccountObj"),
)

OBJECTS: dict[str, ObjectDef] = {o.api_name: o for o in (
    ACCOUNT, CONTACT, PRODUCT, SALES_ORDER, SALES_ORDER_PRODUCT, WAREHOUSE, DELIVERY_NOTE, DELIVERY_NOTE_PRODUCT,
    PAYMENT, ORDER_PAYMENT, DEMO_CUSTOM,
)}

# Detail objects of each master, for create-with-details and cascading void/delete/recover.
DETAILS: dict[str, tuple[str, ...]] = {}
for _obj in OBJECTS.values():
    if _obj.master_field:
        _master = _obj.fields[_obj.master_field].target
        assert _master is not None
        DETAILS[_master] = (*DETAILS.get(_master, ()), _obj.api_name)
