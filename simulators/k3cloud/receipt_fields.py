"""The fields of 收款单 (AR_RECEIVEBILL): header, receipt entry, source entry — evidence in README "AR_RECEIVEBILL".

Kept apart from :mod:`.receipts` (the push) so :mod:`.forms` can build the form without importing the store.
"""

HEADER = """
FBillTypeID r:BOS_BillType 单据类型 req
FDATE d 业务日期 req
FCONTACTUNITTYPE t 往来单位类型 req
FCONTACTUNIT r:BD_Customer 往来单位 req
FPAYUNITTYPE t 付款单位类型
FPAYUNIT r:BD_Customer 付款单位
FCURRENCYID r:BD_Currency 币别 req
FSETTLECUR r:BD_Currency 结算币别
FSETTLEORGID r:{org} 结算组织 req
FPAYORGID r:{org} 收款组织
FSALEORGID r:{org} 销售组织
FSALEERID r:BD_Saler 销售员
FSALEDEPTID r:BD_Department 销售部门
FBUSINESSTYPE t 业务类型
FEXCHANGERATE n 汇率
FRECAMOUNTFOR n 收款金额 ro
FREALRECAMOUNTFOR n 实收金额 ro
FWRITTENOFFSTATUS t 核销状态 ro
FREMARK t 备注
FTHIRDBILLNO t 第三方单据编号
"""
ENTRY = """
FSETTLETYPEID r:BD_SETTLETYPE 结算方式 req
FPURPOSEID r:CN_RECPAYPURPOSE 收款用途 req
FRECTOTALAMOUNTFOR n 应收金额
FRECAMOUNTFOR_E n 收款金额 req
FPOSTDATE d 登账日期
FACCOUNTID t 我方银行账号
FSALEORDERNO t 销售订单号
FSaleOrderID i 销售订单内码
FORDERENTRYID i 销售订单明细内码
FCOMMENT t 备注
"""
SRC_ENTRY = """
FSRCBILLTYPEID t 源单类型
FSRCBILLNO t 源单编号
FSRCBILLID i 源单内码
FSRCROWID i 源单行内码
FORDERBILLNO t 销售订单号
FPLANRECAMOUNT n 计划收款金额
FREALRECAMOUNT n 本次收款金额
FAFTTAXTOTALAMOUNT n 应收金额
FSRCCURRENCYID r:BD_Currency 源单币别
FRECEIVEBILLSRCENTRY_Link x 关联关系
"""
