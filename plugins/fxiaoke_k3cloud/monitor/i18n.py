"""Labels of the monitor in Chinese (zh-CN) and English, chosen from the browser's Accept-Language.

The users are Chinese CRM/ERP administrators: a browser asking for ``zh`` (any region) gets Chinese, everyone
else English. A label missing in Chinese falls back to English, never to a key.
"""

from __future__ import annotations

from collections.abc import Callable

#: key -> (English, 简体中文)
LABELS: dict[str, tuple[str, str]] = {
    "title": ("Fxiaoke ⇄ K3Cloud sync monitor", "纷享销客 ⇄ 金蝶云星空 同步监控"),
    "all_flows": ("all flows", "全部流程"),
    "records": ("Records", "记录"),
    "errors": ("Errors", "错误"),
    "overview": ("Overview", "概览"),
    "search": ("Search", "搜索"),
    "search_ph": ("CRM id, K3 number or name (part of it)", "CRM ID、K3 编号或名称（可部分匹配）"),
    "history": ("History", "历史"),
    "flow": ("flow", "流程"),
    "outcome": ("outcome", "结果"),
    "reason_class": ("reason class", "原因类别"),
    "any": ("any", "全部"),
    "needs_attention": ("needs attention (rejected, failed, parked)", "待处理（拒绝、失败、挂起）"),
    "since": ("from", "起始"),
    "until": ("to", "截止"),
    "filter": ("Filter", "筛选"),
    "csv": ("Export CSV", "导出 CSV"),
    "when": ("when (UTC)", "时间 (UTC)"),
    "crm_id": ("CRM id", "CRM ID"),
    "name": ("name", "名称"),
    "k3_number": ("K3 number", "K3 编号"),
    "reason": ("reason", "原因"),
    "airflow_run": ("Airflow run", "Airflow 运行"),
    "retry": ("Retry selected", "重试所选"),
    "ignore": ("Ignore selected (quarantine)", "忽略所选（隔离）"),
    "ignore_reason": ("reason for ignoring (required)", "忽略原因（必填）"),
    "select": ("select", "选择"),
    "no_records": ("No record matches.", "没有匹配的记录。"),
    "shown": ("record(s) shown, latest outcome per record, newest first", "条记录（每条记录的最新结果，最新在前）"),
    "config_errors": ("Configuration errors — fix the set-up, then re-run", "配置错误 —— 修正配置后重新运行"),
    "data_errors": ("Data errors — fix the record, then Retry", "数据错误 —— 修正记录后重试"),
    "cause": ("cause", "原因"),
    "count": ("records", "记录数"),
    "fix": ("what to do", "处理建议"),
    "mappings_ok": ("Every mapping file validates.", "所有映射文件校验通过。"),
    "mapping_invalid": ("mapping file does not validate", "映射文件校验失败"),
    "none": ("None.", "无。"),
    "stopped_runs": ("Runs that stopped (a step failed once: its task log says what to fix)",
                     "中途停止的运行（某一步失败：其任务日志说明如何修正）"),
    "lag": ("lag source change → target write", "延迟（源变更 → 目标写入）"),
    "api_today": ("API calls today", "今日 API 调用"),
    "not_recorded": ("not recorded", "未记录"),
    "last_success": ("last successful run", "最近成功运行"),
    "never": ("never", "从未"),
    "recent_runs": ("Recent runs", "最近运行"),
    "last_runs": ("Last {n} run(s)", "最近 {n} 次运行"),
    "no_chart": ("No runs to chart yet.", "尚无可绘制的运行。"),
    "parked_q": ("Parked and quarantined records", "挂起与隔离的记录"),
    "nothing_parked": ("Nothing parked or quarantined.", "没有挂起或隔离的记录。"),
    "open_problems": ("records need attention", "条记录待处理"),
    "see_records": ("see Records", "查看记录"),
    "drift": ("Latest reconciliation drift", "最近一次对账差异"),
    "no_drift": ("No reconciliation drift recorded yet.", "尚无对账差异记录。"),
    "no_runs": ("No runs yet.", "尚无运行。"),
    "chart_y": ("records per run", "每次运行的记录数"),
    "chart_x": ("run start (UTC)", "运行开始时间 (UTC)"),
    "state": ("Airflow state", "Airflow 状态"),
    "window": ("window (UTC)", "数据区间 (UTC)"),
    "run": ("run", "运行"),
    "empty_store": ("The audit store has no sync runs yet: no flow has run against it.", "审计库中还没有同步运行记录。"),
    "retry_done": ("Retry requested: Airflow run", "已请求重试：Airflow 运行"),
    "ignore_done": ("Ignored (quarantined)", "已忽略（隔离）"),
    "actions": ("Console actions", "操作记录"),
    "by": ("by", "操作人"),
    "action": ("action", "操作"),
    "retry_unsupported": ("Retry re-drives the flows {flows}; other flows: re-run their DAG.",
                          "重试支持以下流程：{flows}；其他流程请重新运行其 DAG。"),
    "quota": ("daily quota", "每日配额"),
    "watchers": ("Event watchers", "事件监听器"),
    "no_watchers": ("No watcher has polled yet (none runs, or the triggerer is not started).",
                    "尚无监听器轮询记录（未启用，或 triggerer 未启动）。"),
    "watcher": ("watcher", "监听器"),
    "source": ("source", "来源"),
    "mode": ("mode", "方式"),
    "last_poll": ("last poll (UTC)", "最近轮询 (UTC)"),
    "poll_result": ("result", "结果"),
    "position": ("position (newest change seen)", "位置（已见最新变更）"),
    "silent": ("silent", "静默"),
    "no": ("no", "否"),
    "watchers_note": ("A healthy watcher records a poll at least every 30 s; silent: no poll recorded for longer "
                      "than its threshold while it should run — check the triggerer.",
                      "正常的监听器至少每 30 秒记录一次轮询；静默：应运行却超过阈值未记录轮询 —— 请检查 triggerer。"),
    "hint_config": ("Fix the connection or mapping named in the message (Admin → Connections, include/mappings/), "
                    "then re-run the DAG.", "按消息所指修正连接或映射（管理 → 连接，include/mappings/），然后重新运行 DAG。"),
    "hint_parked": ("Waits for the record it references; released by the next run once that one has landed.",
                    "等待其引用的记录；被引用记录同步后，下一次运行会自动放行。"),
    "hint_rejected": ("The CRM data does not fit the mapping: fix the CRM field named in the reason (or add the value "
                      "to the mapping's value map), then Retry.",
                      "CRM 数据不符合映射：修正原因中指出的 CRM 字段（或在映射的值映射中补充该值），然后重试。"),
    "hint_audited": ("Un-audit the document in K3Cloud to let the CRM change through, or make the change there; "
                     "then Retry.", "在金蝶云星空中反审核该单据以接收 CRM 的变更，或直接在金蝶中修改；然后重试。"),
    "hint_conflict": ("Resolve the number/document conflict in K3Cloud as the reason says, then Retry.",
                      "按原因说明在金蝶云星空中解决编号/单据冲突，然后重试。"),
    "hint_k3_refused": ("K3Cloud refused the values: correct the field named in the reason (in the CRM or the "
                        "mapping), then Retry.", "金蝶云星空拒绝了这些值：修正原因中指出的字段（在 CRM 或映射中），然后重试。"),
    "hint_transient": ("A passing outage: the next run retries it; Retry now if it is urgent.",
                       "临时故障：下一次运行会自动重试；紧急时可立即重试。"),
    "hint_other": ("Read the reason, fix the record or the target, then Retry.", "查看原因，修正记录或目标后重试。"),
}


def pick_language(accept_language: str | None) -> str:
    """``"zh"`` when the browser's first acceptable language is Chinese, else ``"en"``."""
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(","):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        tag = lang.strip().lower()
        if tag and q > best_q and (tag.startswith("zh") or tag.startswith("en") or tag == "*"):
            best, best_q = ("zh" if tag.startswith("zh") else "en"), q
    return best


def translator(lang: str) -> Callable[[str], str]:
    """``t(key)`` for one language; unknown keys come back as they are (a visible bug, not a crash)."""
    index = 1 if lang == "zh" else 0

    def t(key: str) -> str:
        pair = LABELS.get(key)
        return (pair[index] or pair[0]) if pair else key

    return t
