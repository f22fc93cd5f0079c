"""The forms the simulator knows: the five business forms of the sync and the base data they reference.

Field keys follow the Save JSON templates of the official API pages (see k3cloud-webapi.md §5). Captions are the
Chinese labels the real server uses in its validation messages.
"""

from __future__ import annotations

from . import receipt_fields as receipts
from .metadata import Entity, Form, entity, parse_fields

ORG = "ORG_Organizations"
ASSIST = "BOS_ASSISTANTDATA_DETAIL"

_SYSTEM = """
FDocumentStatus s 数据状态
FCreateDate d 创建日期 ro
FModifyDate d 最后修改日期 ro
FApproveDate d 审核日期 ro
FCreatorId r:SEC_User 创建人 ro
FModifierId r:SEC_User 最后修改人 ro
FApproverId r:SEC_User 审核人 ro
"""
_BASE_SYSTEM = _SYSTEM + """
FForbidStatus s 禁用状态
FForbidDate d 禁用日期 ro
FNumber t 编码
FName m 名称 req
FDescription t 描述
"""
_BILL_SYSTEM = _SYSTEM + """
FBillNo t 单据编号
FCloseStatus s 关闭状态
FCancelStatus s 作废状态
"""


def _base(form_id: str, caption: str, pk: str, extra: str = "", *, org: bool = False, prefix: str = "",
          entities: list[Entity] | None = None) -> Form:
    org_fields = "FCreateOrgId r:ORG_Organizations 创建组织\nFUseOrgId r:ORG_Organizations 使用组织\n" if org else ""
    header = parse_fields(f"{pk} i {pk}\n{_BASE_SYSTEM}{org_fields}{extra}")
    return Form(form_id=form_id, caption=caption, pk=pk, number_key="FNumber", header=header,
                entities={e.key.lower(): e for e in entities or []}, number_prefix=prefix, number_width=6,
                base_data=True, org_key="FUseOrgId" if org else None, org_controlled=org)


def _bill(form_id: str, caption: str, header: str, entities: list[Entity], prefix: str, org_key: str,
          defaults: dict[str, object]) -> Form:
    return Form(form_id=form_id, caption=caption, pk="FID", number_key="FBillNo",
                header=parse_fields(f"FID i FID\n{_BILL_SYSTEM}{header}"),
                entities={e.key.lower(): e for e in entities}, number_prefix=prefix, number_width=6,
                org_key=org_key, defaults=defaults)


_CUSTOMER_HEADER = f"""
FName m 客户名称 req
FCreateOrgId r:{ORG} 创建组织 req
FUseOrgId r:{ORG} 使用组织
FShortName m 简称
FCOUNTRY r:{ASSIST}/国家 国家
FPROVINCIAL r:{ASSIST}/省份 省份
FADDRESS t 通讯地址
FZIP t 邮政编码
FWEBSITE t 公司网址
FTEL t 联系电话
FFAX t 传真
FCompanyClassify r:{ASSIST}/公司类别 公司类别
FCompanyNature r:{ASSIST}/公司性质 公司性质
FCompanyScale r:{ASSIST}/公司规模 公司规模
FINVOICETITLE t 发票抬头
FTAXREGISTERCODE t 纳税登记号
FINVOICEBANKNAME t 开户银行
FINVOICETEL t 开票联系电话
FINVOICEBANKACCOUNT t 银行账号
FINVOICEADDRESS t 开票通讯地址
FSUPPLIERID r:BD_Supplier 对应供应商
FIsDefPayer b 默认付款方
FGROUPCUSTID r:BD_Customer 集团客户
FIsGroup b 集团客户
FCustTypeId r:{ASSIST}/客户类别 客户类别
FGroup r:BD_CUSTOMERGROUP 客户分组
FTRADINGCURRID r:BD_Currency 结算币别
FCorrespondOrgId r:{ORG} 对应组织
FSALDEPTID r:BD_Department 销售部门
FSALGROUPID r:BD_OPERATORGROUP 销售组
FSELLER r:BD_Saler 销售员
FSETTLETYPEID r:BD_SETTLETYPE 结算方式
FRECCONDITIONID r:BD_RecCondition 收款条件
FDISCOUNTLISTID r:BD_DiscountList 折扣表
FPRICELISTID r:BD_PriceList 价目表
FTRANSLEADTIME i 运输提前期
FInvoiceType t 发票类型
FTaxType r:{ASSIST}/税务类别 税分类
FRECEIVECURRID r:BD_Currency 收款币别
FPriority i 客户优先级
FTaxRate r:BD_TaxRate 默认税率
FISCREDITCHECK b 启用信用管理
FIsTrade b 是否交易客户
"""

CUSTOMER = _base("BD_Customer", "客户", "FCUSTID", _CUSTOMER_HEADER, org=True, prefix="CUST", entities=[
    entity("FT_BD_CUSTOMEREXT", "FEntryId", "客户扩展", f"""
FEnableSL b 启用商联在线
FFreezeLimit t 冻结范围
FFreezeOperator r:SEC_User 冻结人
FFreezeDate d 冻结日期
FPROVINCE r:{ASSIST}/省份 省份
FCITY r:{ASSIST}/城市 城市
FDefaultConsiLoc r:BD_CUSTLOCATION 默认收货地点
FDefaultSettleLoc r:BD_CUSTLOCATION 默认结算地点
FDefaultPayerLoc r:BD_CUSTLOCATION 默认付款地点
FDefaultContact r:BD_CommonContact 默认联系人
FMarginLevel n 保证金比例
FDebitCard t 借记卡
FSettleId r:BD_Customer 结算方
FChargeId r:BD_Customer 收款方
""", multi=False, orm="BD_CUSTOMEREXT"),
    entity("FT_BD_CUSTLOCATION", "FEntryID", "地址信息", """
FContactId r:BD_CommonContact 联系人
FIsDefaultConsigneeCT b 默认收货人
FIsCopy b 复制
""", orm="BD_CUSTLOCATION"),
    entity("FT_BD_CUSTBANK", "FENTRYID", "银行信息", f"""
FCOUNTRY1 r:{ASSIST}/国家 国家
FBANKCODE t 银行账号
FACCOUNTNAME t 账户名称
FBankTypeRec r:BD_BankType 收款银行
FTextBankDetail t 开户行
FBankDetail r:BD_BankDetail 开户银行
FOpenAddressRec t 开户行地址
FOPENBANKNAME t 开户银行
FCNAPS t 联行号
FCURRENCYID r:BD_Currency 币别
FISDEFAULT1 b 默认
""", orm="BD_CUSTBANK"),
    entity("FT_BD_CUSTCONTACT", "FENTRYID", "联系人", """
FNUMBER1 t 地点编码
FNAME1 t 地点名称
FADDRESS1 t 通讯地址
FTRANSLEADTIME1 i 运输提前期
FMOBILE t 手机
FTEL1 t 固定电话
FEMAIL t 电子邮箱
FIsDefaultConsignee b 默认收货地点
FIsDefaultSettle b 默认结算地点
FIsDefaultPayer b 默认付款地点
FIsUsed b 使用
""", orm="BD_CUSTCONTACT"),
    entity("FT_BD_CUSTORDERORG", "FEntryID", "订货组织", f"""
FOrderOrgId r:{ORG} 订货组织
FIsDefaultOrderOrg b 默认订货组织
""", orm="BD_CUSTORDERORG"),
])

MATERIAL = _base("BD_MATERIAL", "物料", "FMATERIALID", f"""
FName m 物料名称 req
FCreateOrgId r:{ORG} 创建组织 req
FSpecification m 规格型号
FMnemonicCode t 助记码
FOldNumber t 旧物料编码
FMaterialGroup r:BD_MaterialGroup 物料分组
FImageFileServer t 图片
""", org=True, prefix="WL", entities=[
    entity("SubHeadEntity", "FEntryId", "基本", f"""
FErpClsID t 物料属性
FBaseUnitId r:BD_UNIT 基本单位
FCategoryID r:BD_MATERIALCATEGORY 存货类别
FTaxRateId r:BD_TaxRate 默认税率
FIsSale b 允许销售
FIsInventory b 允许库存
FIsPurchase b 允许采购
FBARCODE t 条码
FGROSSWEIGHT n 毛重
FNETWEIGHT n 净重
FTaxType r:{ASSIST}/税务类别 税分类
""", multi=False, orm="MaterialBase"),
    entity("SubHeadEntity1", "FEntryId", "库存", "FStoreUnitID r:BD_UNIT 库存单位\nFStockId r:BD_STOCK 仓库",
           multi=False, orm="MaterialStock"),
    entity("SubHeadEntity2", "FEntryId", "销售", "FSaleUnitId r:BD_UNIT 销售单位\nFSalePriceUnitId r:BD_UNIT 销售计价单位",
           multi=False, orm="MaterialSale"),
])

_SO_HEADER = f"""
FBillTypeID r:BOS_BillType 单据类型 req
FDate d 日期 req
FSaleOrgId r:{ORG} 销售组织 req
FCustId r:BD_Customer 客户 req
FSaleDeptId r:BD_Department 销售部门
FSaleGroupId r:BD_OPERATORGROUP 销售组
FSalerId r:BD_Saler 销售员
FReceiveId r:BD_Customer 收货方
FSettleId r:BD_Customer 结算方
FChargeId r:BD_Customer 付款方
FHeadDeliveryWay r:{ASSIST}/交货方式 交货方式
FReceiveAddress t 收货方地址
FLinkMan t 收货方联系人
FLinkPhone t 联系电话
FNote t 备注
FBusinessType t 业务类型
FNetOrderBillNo t 网上订单单号
FThirdPartyNo t 第三方单据编号
FThirdBillNo t 第三方单据编号
"""
_SO_ENTRY = f"""
FRowType t 产品类型
FMaterialId r:BD_MATERIAL 物料编码 req
FUnitID r:BD_UNIT 销售单位
FQty n 销售数量 req
FPrice n 单价
FTaxPrice n 含税单价
FEntryTaxRate n 税率%
FIsFree b 是否赠品
FDiscountRate n 折扣率%
FAmount n 金额
FAllAmount n 价税合计
FDeliveryDate d 要货日期
FStockOrgId r:{ORG} 库存组织
FSettleOrgIds r:{ORG} 结算组织
FSupplyOrgId r:{ORG} 供应组织
FOwnerTypeId t 货主类型
FOwnerId r:{ORG} 货主
FMtoNo t 计划跟踪号
FEntryNote t 备注
FLot r:BD_BatchMainFile 批号
FOrderEntryPlan x 交货明细
FDeliQty n 累计发货通知数量 ro
FStockOutQty n 累计出库数量 ro
FRemainOutQty n 剩余未出数量 ro
FCanOutQty n 可出数量 ro
FReturnQty n 累计退货数量 ro
FInvoiceQty n 累计开票数量 ro
FReceiveAmount n 累计收款金额 ro
FDeliveryStatus t 发货状态 ro
FMrpCloseStatus s 业务关闭 ro
"""

SALE_ORDER = _bill("SAL_SaleOrder", "销售订单", _SO_HEADER, [
    entity("FSaleOrderEntry", "FEntryID", "订单明细", _SO_ENTRY, orm="SaleOrderEntry"),
    entity("FSaleOrderFinance", "FEntryId", "财务信息", f"""
FSettleCurrId r:BD_Currency 结算币别 req
FRecConditionId r:BD_RecCondition 收款条件
FSettleModeId r:BD_SETTLETYPE 结算方式
FIsIncludedTax b 是否含税
FIsPriceExcludeTax b 价外税
FExchangeTypeId r:BD_Rate_Type 汇率类型
FExchangeRate n 汇率
FPriceListId r:BD_PriceList 价目表
FBillAmount n 税额
FBillAllAmount n 价税合计
""", multi=False, orm="SaleOrderFinance"),
    entity("FSaleOrderPlan", "FEntryID", "收款计划", multi=True, orm="SaleOrderPlan", loose=True),
    entity("FSaleOrderClause", "FEntryID", "订单条款", multi=True, orm="SaleOrderClause", loose=True),
], prefix="XSDD", org_key="FSaleOrgId", defaults={
    "FBillTypeID": {"FNumber": "XSDD01_SYS"},
    "FSaleOrderFinance.FSettleCurrId": {"FNumber": "PRE001"},
})

_SUBHEAD_SETTLE = f"""
FSettleOrgID r:{ORG} 结算组织
FSettleCurrID r:BD_Currency 结算币别
FLocalCurrID r:BD_Currency 本位币
FExchangeTypeID r:BD_Rate_Type 汇率类型
FExchangeRate n 汇率
FSettleTypeID r:BD_SETTLETYPE 结算方式
FReceiptConditionID r:BD_RecCondition 收款条件
FIsIncludedTax b 是否含税
"""
_LINE_COMMON = f"""
FRowType t 产品类型
FMaterialID r:BD_MATERIAL 物料编码 req
FUnitID r:BD_UNIT 销售单位
FPrice n 单价
FTaxPrice n 含税单价
FEntryTaxRate n 税率%
FStockID r:BD_STOCK 仓库
FLot r:BD_BatchMainFile 批号
FOwnerTypeID t 货主类型
FOwnerID r:{ORG} 货主
FSrcType t 源单类型
FSrcBillNo t 源单编号
FSOEntryId i 销售订单EntryId
FEntity_Link x 关联关系
"""

DELIVERY_NOTICE = _bill("SAL_DELIVERYNOTICE", "发货通知单", f"""
FBillTypeID r:BOS_BillType 单据类型 req
FDate d 日期 req
FSaleOrgId r:{ORG} 销售组织 req
FDeliveryOrgID r:{ORG} 发货组织
FCustomerID r:BD_Customer 客户 req
FSaleDeptID r:BD_Department 销售部门
FSalesManID r:BD_Saler 销售员
FReceiverID r:BD_Customer 收货方
FReceiveAddress t 收货地址
FOwnerTypeIdHead t 货主类型
FCarrierID r:BD_Supplier 承运商
FNote t 备注
""", [
    entity("FEntity", "FEntryID", "明细信息", _LINE_COMMON + """
FQty n 销售数量 req
FPlanDeliveryDate d 计划发货日期
FStockUnitID r:BD_UNIT 库存单位
FStockQty n 库存数量
FOutLmtUnit t 超发控制单位类型
FOrderNo t 订单单号
FOrderSeq i 订单行号
FSUMOUTQTY n 累计出库数量 ro
FNoteEntry t 备注
""", orm="SAL_DELIVERYNOTICEENTRY"),
    entity("SubHeadEntity", "FEntryId", "财务信息", _SUBHEAD_SETTLE, multi=False, orm="SAL_DELIVERYNOTICEFIN"),
], prefix="FHTZD", org_key="FSaleOrgId", defaults={"FBillTypeID": {"FNumber": "FHTZD01_SYS"}})

OUT_STOCK = _bill("SAL_OUTSTOCK", "销售出库单", f"""
FBillTypeID r:BOS_BillType 单据类型 req
FDate d 日期 req
FSaleOrgId r:{ORG} 销售组织 req
FStockOrgId r:{ORG} 发货组织 req
FCustomerID r:BD_Customer 客户 req
FSaleDeptID r:BD_Department 销售部门
FSalesManID r:BD_Saler 销售员
FReceiverID r:BD_Customer 收货方
FSettleID r:BD_Customer 结算方
FPayerID r:BD_Customer 付款方
FCarrierID r:BD_Supplier 承运商
FCarriageNO t 运输单号
FLogisticsNos t 物流单号
FReceiveAddress t 收货方地址
FOwnerTypeIdHead t 货主类型
FARStatus t 立账状态
FNote t 备注
""", [
    entity("FEntity", "FENTRYID", "明细信息", _LINE_COMMON + """
FMustQty n 应发数量
FRealQty n 实发数量 req
FSoorDerno t 订单单号
FReturnQty n 累计退货数量 ro
FSignQty n 签收数量
FArrivalStatus t 到货状态
FEntrynote t 备注
""", orm="SAL_OUTSTOCKENTRY"),
    entity("SubHeadEntity", "FEntryId", "财务信息", _SUBHEAD_SETTLE, multi=False, orm="SAL_OUTSTOCKFIN"),
], prefix="XSCKD", org_key="FStockOrgId", defaults={"FBillTypeID": {"FNumber": "XSCKD01_SYS"}})

# 收款单: header per the Save templates of public clients (k3cloud-webapi.md §5.6; README "AR_RECEIVEBILL").
# FRECAMOUNTFOR / FREALRECAMOUNTFOR are the entries' sum, kept by the server (Save computes them).
RECEIVE_BILL = _bill("AR_RECEIVEBILL", "收款单", receipts.HEADER.format(org=ORG), [
    entity("FRECEIVEBILLENTRY", "FEntryID", "收款单明细", receipts.ENTRY),
    entity("FRECEIVEBILLSRCENTRY", "FEntryID", "源单明细", receipts.SRC_ENTRY),
], prefix="SKD", org_key="FSETTLEORGID", defaults={
    "FBillTypeID": {"FNumber": "SKDLX01_SYS"}, "FCONTACTUNITTYPE": "BD_Customer", "FPAYUNITTYPE": "BD_Customer",
    "FBUSINESSTYPE": "1", "FCURRENCYID": {"FNumber": "PRE001"}, "FEXCHANGERATE": 1,
})

# 联系人 (common contact): a person of a customer (FCompanyType BD_Customer + FCompany) or of a supplier. Field keys
# from public WebAPI Save payloads (see README "BD_CommonContact"); not org-controlled here (assumption).
CONTACT = _base("BD_CommonContact", "联系人", "FCONTACTID", """
FCompanyType t 所属公司类型
FCompany r:BD_Customer 所属公司
FCustId r:BD_Customer 客户
FMobile t 移动电话
FTel t 固定电话
FEmail t 电子邮箱
FPost t 职务
FBizAddress t 详细地址
""", prefix="CXR")

# Base data the business forms reference. Org-controlled ones must be allocated to the org a bill is in.
BASE_FORMS: list[Form] = [
    _base(ORG, "组织机构", "FOrgID", "FOrgFunctions t 组织职能"),
    _base("BD_Currency", "币别", "FCURRENCYID", "FCODE t 货币代码\nFSymbol t 货币符号\nFPRICEDIGITS i 单价精度\nFAMOUNTDIGITS i 金额精度"),
    _base("BD_TaxRate", "税率", "FID", "FTaxRate n 税率%"),
    _base(ASSIST, "辅助资料", "FEntryID", "FId t 类别\nFDataValue m 值"),
    _base("BD_CUSTOMERGROUP", "客户分组", "FID", "FParentId i 上级分组"),
    _base("BD_Saler", "销售员", "FID", "FStaffId i 员工\nFBizOrgId r:ORG_Organizations 业务组织", org=True),
    _base("BD_Department", "部门", "FDEPTID", "", org=True),
    _base("BD_UNIT", "计量单位", "FUNITID", "FUnitGroupId t 单位组\nFPrecision i 精度"),
    _base("BOS_BillType", "单据类型", "FBILLTYPEID", "FBillFormID t 单据\nFIsDefault b 默认"),
    _base("BD_STOCK", "仓库", "FStockId", "FStockProperty t 仓库属性", org=True),
    _base("BD_SETTLETYPE", "结算方式", "FID"),
    _base("CN_RECPAYPURPOSE", "收付款用途", "FID"),
    _base("BD_RecCondition", "收款条件", "FID", "", org=True),
    _base("BD_Rate_Type", "汇率类型", "FRATETYPEID"),
    _base("SEC_User", "用户", "FUserID", "FUserAccount t 用户账号"),
    _base("BD_Supplier", "供应商", "FSUPPLIERID", "", org=True),
    _base("BD_PriceList", "价目表", "FID", "", org=True),
    _base("BD_DiscountList", "折扣表", "FID", "", org=True),
    _base("BD_OPERATORGROUP", "业务组", "FID"),
    CONTACT,
    _base("BD_CUSTLOCATION", "客户地点", "FID"),
    _base("BD_BankType", "银行类型", "FID"),
    _base("BD_BankDetail", "银行网点", "FID"),
    _base("BD_MaterialGroup", "物料分组", "FID"),
    _base("BD_MATERIALCATEGORY", "存货类别", "FCATEGORYID"),
    _base("BD_BatchMainFile", "批号主档", "FLOTID", "", org=True),
]

ALL_FORMS: dict[str, Form] = {f.form_id.lower(): f for f in [CUSTOMER, MATERIAL, SALE_ORDER, DELIVERY_NOTICE, OUT_STOCK, RECEIVE_BILL,
                                                        *BASE_FORMS]}


def get_form(form_id: str) -> Form | None:
    """Form ids are case-insensitive on the real server (``BD_Customer`` / ``bd_customer``)."""
    return ALL_FORMS.get((form_id or "").strip().lower())
