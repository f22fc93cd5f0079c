"""Base data (always present after start or reset) and the deterministic ``--seed-demo N`` generator."""

from __future__ import annotations

import random
from typing import Any

from .config import SimConfig
from .schema import OBJECTS
from .store import Store

# Base data is stamped at a fixed instant (2024-01-01 00:00 +08:00) so ids and times are the same every run.
BASE_DATA_MS = 1704038400000
WHOLE_COMPANY = 999999

DEPARTMENTS = (
    (WHOLE_COMPANY, "全公司", None),
    (1001, "华东销售部", WHOLE_COMPANY),
    (1002, "华南销售部", WHOLE_COMPANY),
)

# (open user id suffix, numeric id, name, mobile, position, department)
REPS = (
    ("A002", 1001, "张伟", "13800000001", "销售经理", 1001),
    ("A003", 1002, "李娜", "13800000002", "销售代表", 1001),
    ("A004", 1003, "王强", "13800000003", "销售代表", 1002),
)

# product_code MAT-0001..MAT-0020 match the K3Cloud simulator's materials; MAT-9999 exists only in the CRM.
PRODUCTS = (
    ("不锈钢六角螺栓 M8", "M8x30 304", "个", "0.85"),
    ("不锈钢六角螺母 M8", "M8 304", "个", "0.35"),
    ("平垫圈 M8", "M8 镀锌", "个", "0.08"),
    ("深沟球轴承 6204", "6204-2RS", "个", "12.50"),
    ("深沟球轴承 6305", "6305-ZZ", "个", "18.00"),
    ("同步带 HTD-5M", "5M-450-15", "件", "36.00"),
    ("三相异步电机 2.2kW", "Y2-100L1-4", "台", "1280.00"),
    ("减速机 NMRV050", "i=30", "台", "860.00"),
    ("气缸 SC50x100", "SC50-100", "件", "145.00"),
    ("电磁阀 4V210-08", "DC24V", "件", "68.00"),
    ("PU 气管 8mm", "8x5 蓝色", "米", "2.60"),
    ("快插接头 PC8-02", "PC8-02", "个", "3.20"),
    ("液压油 46#", "18L/桶", "箱", "420.00"),
    ("润滑脂 锂基 2#", "15kg/桶", "千克", "22.00"),
    ("接近开关 LJ12A3", "NPN 常开", "个", "16.50"),
    ("光电传感器 E3F-DS30", "DS30C4", "个", "21.00"),
    ("PLC 控制器 S7-200", "CPU224XP", "台", "2350.00"),
    ("触摸屏 7寸", "TK6070iP", "台", "980.00"),
    ("控制柜 800x600", "IP54", "套", "3200.00"),
    ("电缆 RVV 3x1.5", "100m/卷", "米", "4.80"),
)
LEGACY_PRODUCT = ("停产配件 X-99", "LEGACY", "件", "99.00")

COMPANY_WORDS = ("华创", "恒通", "联合", "远景", "宏达", "鑫源", "瑞丰", "天成", "博远", "嘉禾", "金桥", "新锐")
CITIES = (("上海", "上海市"), ("苏州", "江苏省"), ("杭州", "浙江省"), ("广州", "广东省"), ("深圳", "广东省"),
          ("南京", "江苏省"))
INDUSTRY = ("机械", "自动化", "电气", "科技", "制造", "贸易")
SURNAMES = ("陈", "刘", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马")
GIVEN = ("明", "芳", "军", "静", "磊", "洋", "勇", "艳", "杰", "敏")
DAY_MS = 86_400_000
# Warehouses of the inventory module, numbered as the K3Cloud simulator's BD_STOCK rows.
WAREHOUSES = (("CK001", "成品仓", True), ("CK002", "备件仓", False))
# Demo rows are stamped in groups that share one last_modified_time (the equal-timestamp pitfall of §3.5).
DEMO_GROUP = 60


def open_user_id(suffix: str) -> str:
    return "FSUID_" + suffix.rjust(32, "0")


def load_base(store: Store, config: SimConfig) -> None:
    for dept_id, name, parent in DEPARTMENTS:
        store.departments[dept_id] = {"id": dept_id, "name": name, "parentId": parent, "order": dept_id,
                                      "isStop": False}
    people = [(config.open_user_id, 1000, "系统管理员", config.mobile, "CRM管理员", WHOLE_COMPANY)]
    people += [(open_user_id(s), num, n, m, p, d) for s, num, n, m, p, d in REPS]
    for oid, num, name, mobile, position, dept in people:
        store.employees[oid] = {
            "openUserId": oid, "employeeId": num, "name": name, "nickName": name, "mobile": mobile,
            "email": f"user{num}@sim.example", "position": position, "departmentIds": [dept],
            "mainDepartmentIds": [dept], "leaderId": None if num == 1000 else config.open_user_id,
            "isStop": False, "gender": "M", "createTime": BASE_DATA_MS, "updateTime": BASE_DATA_MS + num,
        }
    products = OBJECTS["ProductObj"]
    rows = [(f"MAT-{i:04d}", *p) for i, p in enumerate(PRODUCTS, start=1)] + [("MAT-9999", *LEGACY_PRODUCT)]
    for code, name, spec, unit, price in rows:
        rec = store.build(products, {"name": name, "product_code": code, "product_spec": spec, "unit": unit,
                                     "price": price, "product_status": "1", "category": "标准件"},
                          now_ms=BASE_DATA_MS, user=config.open_user_id, keep_system=True)
        store.table("ProductObj")[rec["_id"]] = rec
    warehouses = OBJECTS["WarehouseObj"]
    for number, name, default in WAREHOUSES:
        rec = store.build(warehouses, {"name": name, "number": number, "is_default": default},
                          now_ms=BASE_DATA_MS, user=config.open_user_id, keep_system=True)
        store.table("WarehouseObj")[rec["_id"]] = rec


def product_ids_by_code(store: Store) -> dict[str, dict[str, Any]]:
    return {r["product_code"]: r for r in store.table("ProductObj").values()}


def generate_demo(store: Store, config: SimConfig, n: int, base_ms: int | None = None) -> dict[str, int]:
    """Add ``n`` customers, each with 1–2 normal sales orders of 1–3 lines and one contact (its contact person);
    same output for the same ``n``."""
    base_ms = config.demo_base_ms if base_ms is None else base_ms
    rng = random.Random(f"fxiaoke-demo-{n}")
    reps = [open_user_id(s) for s, *_ in REPS]
    by_code = product_ids_by_code(store)
    catalogue = [by_code[f"MAT-{i:04d}"] for i in range(1, 21)]
    account, order, line = OBJECTS["AccountObj"], OBJECTS["SalesOrderObj"], OBJECTS["SalesOrderProductObj"]
    counts = {"AccountObj": 0, "SalesOrderObj": 0, "SalesOrderProductObj": 0, "ContactObj": 0}
    made: list[dict[str, Any]] = []
    order_no = 0
    for i in range(1, n + 1):
        city, province = CITIES[rng.randrange(len(CITIES))]
        word, trade = COMPANY_WORDS[rng.randrange(len(COMPANY_WORDS))], INDUSTRY[rng.randrange(len(INDUSTRY))]
        company = f"{city}{word}{trade}有限公司{i:04d}"
        contact = SURNAMES[rng.randrange(len(SURNAMES))] + GIVEN[rng.randrange(len(GIVEN))]
        owner = reps[rng.randrange(len(reps))]
        stamp = base_ms + (i - 1) // DEMO_GROUP * 60_000
        acc = store.build(account, {
            "name": company, "account_no": f"AC{i:06d}", "account_type": rng.choice(["1", "2"]),
            "account_level": rng.choice(["A", "B", "C"]), "tel": f"021-{rng.randrange(10**7, 10**8)}",
            "address": f"{province}{city}市工业园区{rng.randrange(1, 300)}号", "country": "中国",
            "province": province, "city": city,
            "field_fnfcA__c": f"CUST-{i:06d}", "field_n5V1I__c": rng.choice(["KHLB001_SYS", "KHLB002_SYS"]),
            "field_IdOci__c": rng.choice(["01", "02"]), "field_zW12m__c": contact,
            "field_G45nC__c": f"139{rng.randrange(10**8):08d}",
            "owner": [owner], "create_time": stamp, "last_modified_time": stamp,
        }, now_ms=stamp, user=config.open_user_id, keep_system=True)
        store.table("AccountObj")[acc["_id"]] = acc
        made.append(acc)
        counts["AccountObj"] += 1
        for _ in range(rng.randint(1, 2)):
            order_no += 1
            o_stamp = base_ms + DAY_MS + (order_no - 1) // DEMO_GROUP * 60_000
            order_time = base_ms - rng.randrange(0, 30) * DAY_MS
            picks = rng.sample(catalogue, rng.randint(1, 3))
            lines = []
            for product in picks:
                qty = rng.randint(1, 50)
                price = product["price"]
                lines.append((product, qty, price, f"{qty * float(price):.2f}"))
            amount = f"{sum(float(sub) for *_, sub in lines):.2f}"
            so = store.build(order, {
                "name": f"SO{order_no:06d}", "account_id": acc["_id"], "order_amount": amount,
                "order_time": order_time, "delivery_date": order_time + 7 * DAY_MS, "order_status": "7",
                "owner": [owner], "life_status": "normal", "create_time": o_stamp, "last_modified_time": o_stamp,
            }, now_ms=o_stamp, user=config.open_user_id, keep_system=True)
            store.table("SalesOrderObj")[so["_id"]] = so
            counts["SalesOrderObj"] += 1
            for n_line, (product, qty, price, sub) in enumerate(lines, start=1):
                sop = store.build(line, {
                    "name": f"SO{order_no:06d}-{n_line}", "order_id": so["_id"], "product_id": product["_id"],
                    "quantity": str(qty), "sales_price": price, "product_price": price, "subtotal": sub,
                    "unit": product["unit"], "owner": [owner], "life_status": "normal",
                    "create_time": o_stamp, "last_modified_time": o_stamp,
                }, now_ms=o_stamp, user=config.open_user_id, keep_system=True)
                store.table("SalesOrderProductObj")[sop["_id"]] = sop
                counts["SalesOrderProductObj"] += 1
    # Contacts last and without the random generator, so the customers and orders keep their ids and values.
    person = OBJECTS["ContactObj"]
    for i, acc in enumerate(made, start=1):
        stamp = int(acc["last_modified_time"])
        rec = store.build(person, {
            "name": acc["field_zW12m__c"], "account_id": acc["_id"], "mobile1": acc["field_G45nC__c"],
            "tel1": acc["tel"], "email": f"contact{i:06d}@example.com", "company": acc["name"],
            "owner": acc["owner"], "life_status": "normal", "create_time": stamp, "last_modified_time": stamp,
        }, now_ms=stamp, user=config.open_user_id, keep_system=True)
        store.table("ContactObj")[rec["_id"]] = rec
        counts["ContactObj"] += 1
    return counts
