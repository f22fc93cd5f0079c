"""Base data present after every start and reset (documented in simulators/k3cloud/README.md)."""

from __future__ import annotations

import copy
from typing import Any

from .forms import get_form
from .store import Doc, Store, now_local

ORGS = [("100", "总部"), ("603", "华东销售公司")]
ALL_ORGS = {number for number, _ in ORGS}

# 20 materials whose numbers equal the Fxiaoke simulator's product codes (MAT-0001 … MAT-0020).
MATERIAL_NAMES = [
    ("工业路由器 R100", "R100", "Pcs"), ("工业交换机 S24", "S24", "Pcs"), ("边缘网关 G2", "G2", "Pcs"),
    ("温湿度传感器 TH1", "TH1", "Pcs"), ("压力变送器 P10", "P10", "Pcs"), ("PLC 控制器 C300", "C300", "Pcs"),
    ("触摸屏 HMI7", "7寸", "Pcs"), ("伺服电机 SV750", "750W", "Pcs"), ("伺服驱动器 SD750", "750W", "Pcs"),
    ("变频器 VF22", "2.2kW", "Pcs"), ("开关电源 PS24", "24V 5A", "Pcs"), ("工业网线 CAT6", "305m", "box"),
    ("光纤跳线 LC-LC", "3m", "Pcs"), ("电缆 RVV 3x1.5", "100m", "box"), ("安装支架 BK1", "不锈钢", "set"),
    ("控制柜 CB600", "600x800", "set"), ("继电器模块 RM8", "8路", "Pcs"), ("数据采集卡 DAQ16", "16通道", "Pcs"),
    ("年度维保服务", "1年", "Pcs"), ("润滑油 L46", "18L", "kg"),
]


def _number_model(number: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"FNumber": number, "FName": name, **extra}


BASE_DATA: dict[str, list[dict[str, Any]]] = {
    "ORG_Organizations": [_number_model(n, name, FOrgFunctions="101,102,103,104") for n, name in ORGS],
    "BD_Currency": [
        _number_model("PRE001", "人民币", FCODE="CNY", FSymbol="¥", FPRICEDIGITS=6, FAMOUNTDIGITS=2),
        _number_model("PRE002", "香港元", FCODE="HKD", FSymbol="HK$", FPRICEDIGITS=6, FAMOUNTDIGITS=2),
        _number_model("PRE007", "美元", FCODE="USD", FSymbol="$", FPRICEDIGITS=6, FAMOUNTDIGITS=2),
    ],
    "BD_TaxRate": [
        _number_model("SL01_SYS", "17%增值税", FTaxRate=17.0), _number_model("SL02_SYS", "13%增值税", FTaxRate=13.0),
        _number_model("SL03_SYS", "9%增值税", FTaxRate=9.0), _number_model("SL04_SYS", "6%增值税", FTaxRate=6.0),
        _number_model("SL05_SYS", "零税率", FTaxRate=0.0),
    ],
    "BOS_ASSISTANTDATA_DETAIL": [
        _number_model("KHLB001_SYS", "普通销售客户", FId="客户类别", FDataValue="普通销售客户"),
        _number_model("KHLB002_SYS", "寄售客户", FId="客户类别", FDataValue="寄售客户"),
        _number_model("KHLB003_SYS", "内部结算客户", FId="客户类别", FDataValue="内部结算客户"),
        _number_model("KHLB004_SYS", "分销商", FId="客户类别", FDataValue="分销商"),
        _number_model("SFL01_SYS", "小规模纳税人", FId="税务类别", FDataValue="小规模纳税人"),
        _number_model("SFL02_SYS", "一般纳税人", FId="税务类别", FDataValue="一般纳税人"),
        _number_model("China", "中国", FId="国家", FDataValue="中国"),
        _number_model("Singapore", "新加坡", FId="国家", FDataValue="新加坡"),
        _number_model("JHFS01_SYS", "送货", FId="交货方式", FDataValue="送货"),
        _number_model("JHFS02_SYS", "自提", FId="交货方式", FDataValue="自提"),
    ],
    "BD_CUSTOMERGROUP": [
        _number_model("KHFZ01", "华东区客户"), _number_model("KHFZ02", "华南区客户"), _number_model("KHFZ03", "华北区客户"),
    ],
    "BD_Saler": [
        _number_model("01900_GW000012_100278", "张伟", FBizOrgId={"FNumber": "603"}),
        _number_model("SM001", "李娜", FBizOrgId={"FNumber": "100"}),
    ],
    "BD_Department": [_number_model("BM000001", "销售部"), _number_model("BM000002", "仓储部")],
    "BD_UNIT": [
        _number_model("Pcs", "Pcs", FPrecision=0), _number_model("box", "箱", FPrecision=0),
        _number_model("set", "套", FPrecision=0), _number_model("kg", "千克", FPrecision=3),
    ],
    "BOS_BillType": [
        _number_model("XSDD01_SYS", "标准销售订单", FBillFormID="SAL_SaleOrder", FIsDefault=True),
        _number_model("XSDD02_SYS", "寄售销售订单", FBillFormID="SAL_SaleOrder", FIsDefault=False),
        _number_model("FHTZD01_SYS", "标准发货通知单", FBillFormID="SAL_DELIVERYNOTICE", FIsDefault=True),
        _number_model("XSCKD01_SYS", "标准销售出库单", FBillFormID="SAL_OUTSTOCK", FIsDefault=True),
        _number_model("SKDLX01_SYS", "销售收款单", FBillFormID="AR_RECEIVEBILL", FIsDefault=True),
    ],
    "BD_STOCK": [_number_model("CK001", "成品仓", FStockProperty="1"), _number_model("CK002", "备件仓", FStockProperty="1")],
    "BD_SETTLETYPE": [_number_model("JSFS01_SYS", "现金"), _number_model("JSFS04_SYS", "电汇")],
    "CN_RECPAYPURPOSE": [_number_model("SFKYT01_SYS", "销售收款"), _number_model("SFKYT02_SYS", "预收款")],
    "BD_RecCondition": [_number_model("SKTJ01_SYS", "货到收款"), _number_model("SKTJ02_SYS", "月结30天")],
    "BD_Rate_Type": [_number_model("HLTX01_SYS", "固定汇率")],
    "SEC_User": [_number_model("administrator", "Administrator", FUserAccount="administrator")],
    "BD_MATERIAL": [
        _number_model(f"MAT-{i:04d}", name, FSpecification=spec,
                      SubHeadEntity={"FErpClsID": "1", "FBaseUnitId": {"FNumber": unit}, "FIsSale": True,
                                     "FIsInventory": True, "FTaxRateId": {"FNumber": "SL02_SYS"}},
                      SubHeadEntity2={"FSaleUnitId": {"FNumber": unit}})
        for i, (name, spec, unit) in enumerate(MATERIAL_NAMES, start=1)
    ],
}


def allocated_copy(store: Store, master: Doc, org: str, status: str, stamp: str) -> Doc:
    """A master's copy for use org ``org`` (what Allocate creates): same number and data, its own id and state."""
    data = copy.deepcopy(master.data)
    form = master.form
    data[form.pk] = store.new_id()
    for ent in form.entities.values():
        if not ent.multi and isinstance(data.get(ent.key), dict):
            data[ent.key][ent.pk] = store.new_entry_id()
    data.update(FMasterId=master.id, FUseOrgId={"FNumber": org}, FDocumentStatus=status, FForbidStatus="A",
                FForbidDate=None, FCreateDate=stamp, FModifyDate=stamp,
                FApproveDate=stamp if status == "C" else None)
    return Doc(form=form, data=data)


def load_base_data(store: Store, api_username: str) -> None:
    """Insert the base data as audited and not forbidden; org-controlled forms get a master in org 100 and an
    allocated copy (a row of its own) for every other org."""
    stamp = now_local()
    users = BASE_DATA["SEC_User"] + [_number_model(api_username, api_username, FUserAccount=api_username)]
    for form_id, models in {**BASE_DATA, "SEC_User": users}.items():
        form = get_form(form_id)
        assert form is not None, form_id
        for model in models:
            data: dict[str, Any] = {form.pk: store.new_id(), **model}
            for ent in form.entities.values():
                if ent.key in data and not ent.multi:
                    data[ent.key] = {ent.pk: store.new_entry_id(), **data[ent.key]}
            data.update(FDocumentStatus="C", FForbidStatus="A", FCreateDate=stamp, FModifyDate=stamp, FApproveDate=stamp)
            if form.org_controlled:
                data.setdefault("FCreateOrgId", {"FNumber": "100"})
                data.setdefault("FUseOrgId", {"FNumber": "100"})
            master = Doc(form=form, data=data)
            store.put(master)
            if form.org_controlled:
                for org in sorted(ALL_ORGS - {"100"}):
                    store.put(allocated_copy(store, master, org, "C", stamp))
