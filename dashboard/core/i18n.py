"""Translate the interface: Simplified Chinese by default, English on request."""

from __future__ import annotations

import re

_TEXT = {
    "app_title": ("城市运行全景", "City Operations Panorama"),
    # each page's tab title (callbacks/pages.py), followed by the app's
    "page_panorama": ("全景", "Panorama"),
    "page_wall": ("大屏", "Video wall"),
    "page_district": ("区县", "District"),
    "page_dispatch": ("联动派单", "Dispatch"),
    "page_mobile": ("指挥", "Command"),
    "page_briefings": ("运行简报", "Briefings"),
    "page_notifications": ("通知记录", "Notifications"),
    "page_rosters": ("值班", "Duty"),
    "page_login": ("登录", "Sign in"),
    "page_open": ("开放数据", "Open data"),
    "page_not_found": ("未找到", "Not found"),
    "nav_label": ("页面导航", "Pages"),  # the shell's navigation, named for screen readers
    "wall_title": ("深圳城市运行指挥中心", "Shenzhen City Operations Centre"),
    "security": ("公共安全", "Security"),
    "traffic": ("交通", "Traffic"),
    "environment": ("生态环境", "Environment"),
    "incident": ("突发事件", "Incidents"),
    "latest_events": ("最新事件", "Latest events"),
    "feed_status": ("数据源状态", "Feed status"),
    "never": ("无数据", "no data"),
    "seconds_ago": ("{s} 秒前", "{s} s ago"),
    "minutes_ago": ("{m} 分钟前", "{m} min ago"),
    "hours_ago": ("{h} 小时前", "{h} h ago"),
    "per_min": ("{n}/分钟", "{n}/min"),
    "mode_embedded": ("内置演示模式", "embedded demo mode"),
    "language": ("English", "中文"),
    "breadcrumb": ("位置", "You are here"),
    "notices": ("提示", "Notices"),
    "unavailable": ("数据暂不可用，正在重试", "data unavailable, retrying"),
    # window selector and KPI comparison
    "window": ("统计时段", "Window"),
    "w_15m": ("15 分钟", "15 min"),
    "w_1h": ("1 小时", "1 h"),
    "w_24h": ("24 小时", "24 h"),
    "w_7d": ("7 天", "7 days"),
    "w_30d": ("30 天", "30 days"),
    "vs_prev": ("较上一时段", "vs previous"),
    # map measures
    "measure": ("地图指标", "Map measure"),
    "m_all": ("全部事件", "All events"),
    "m_risk": ("风险指数", "Risk score"),
    "m_risk_population": ("风险指数（暂无基线，按人口）", "Risk (no baseline yet: per resident)"),
    "events": ("事件", "events"),
    "risk": ("风险", "risk"),
    "city_map": ("各区态势", "Districts"),
    "map_hint": ("点击行政区查看详情", "Click a district to drill down"),
    # response units on the maps (SPEC section 11), by status
    "units_legend": ("救援力量", "Units"),
    "unit_available": ("待命", "available"),
    "unit_en_route": ("在途", "en route"),
    "unit_on_scene": ("到场", "on scene"),
    "unit_off_duty": ("下勤", "off duty"),
    # the dispatch dialog's suggestion of units
    "nearest_units": ("就近可派力量", "Nearest available units"),
    "straight_line": ("按直线距离排序，未考虑道路", "By straight-line distance, not by road"),
    "no_units_near": ("暂无可派力量", "No unit available"),
    "send_units": ("派出所选力量", "Send the chosen units"),
    "units_sent": ("已派出 {n} 个力量", "{n} unit(s) sent"),
    "km": ("{km} 公里", "{km} km"),
    "trends": ("近 1 小时每分钟趋势", "Per-minute trend, last hour"),
    "top_risk": ("高风险行政区 TOP 5", "Top 5 districts by risk"),
    # connection indicator: the English word stays, like "stale", for whoever reads the screen remotely
    "conn_connecting": ("连接中 · connecting", "connecting"),
    "conn_live": ("实时 · live", "live"),
    "conn_reconnecting": ("重连中 · reconnecting", "reconnecting"),
    "conn_polling": ("轮询 · polling", "polling"),
    "conn_replay": ("回放 · replay", "replay"),
    # after-action replay (layouts/replay.py): the banner says REPLAY in both languages, like "stale"
    "replay_enter": ("历史回放", "Replay"),
    "replay_banner": ("历史回放 · REPLAY · 非实时", "REPLAY · not live"),
    "replay_at": ("回放时刻", "Replaying"),
    "replay_speed": ("{n}× 速度", "{n}× speed"),
    "replay_paused": ("已暂停", "paused"),
    "replay_pause": ("暂停", "Pause"),
    "replay_live": ("返回实时", "Back to live"),
    "replay_scrub": ("拖动选择回放时刻", "Drag to the minute to replay"),
    "replay_refused": ("无法回放", "Cannot replay"),
    "banner_stale": ("数据源停更（stale）：{feeds}", "Stale feeds: {feeds}"),
    "banner_lost": ("实时连接中断，正在重连", "Live connection lost — reconnecting"),
    "banner_poll_failed": ("无法获取最新数据，显示的是 {s} 秒前的状态", "Cannot reach the server — data is {s} s old"),
    "banner_bus_down": ("消息总线中断，数据可能滞后", "Message bus down — data may lag"),
    # wall spotlight
    "spotlight": ("区域聚焦", "District spotlight"),
    "population": ("常住人口", "Population"),
    "ten_thousand": ("{n} 万", "{n}"),
    # district drill-down
    "city": ("全市", "City"),
    "back_to_city": ("返回全市", "Back to the city"),
    "streets": ("街道分布", "By street (jiedao)"),
    "streets_rest": ("其余街道", "Other streets"),
    "incidents_rest": ("其余 {n} 起未结事件", "{n} more open incidents"),
    "district_events": ("区域事件", "District events"),
    "open_incidents": ("未结事件", "Open incidents"),
    "no_open_incidents": ("暂无未结事件", "No open incidents"),
    "reports": ("{n} 次报告", "{n} report(s)"),
    "n_streets": ("{n} 个街道", "{n} streets (jiedao)"),
    "street_map": ("街道地图", "Streets map"),
    "street_events": ("街道事件数", "Events by street"),
    "streets_approximate": ("街道边界为近似示意", "Street boundaries are approximate"),
    "risk_rank": ("风险排名 {rank}/{n}", "risk rank {rank} of {n}"),
    "city_share": ("占全市 {p}%", "{p}% of the city"),
    "street_rank": ("街道排名 {rank}/{n}", "street {rank} of {n}"),
    "district_share": ("占本区 {p}%", "{p}% of the district"),
    "street_open": ("未结 {n}", "{n} open"),
    "filter_placeholder": ("筛选…", "filter…"),
    "n_events": ("共 {n} 条", "{n} events"),
    "sort_unserved": ("此列不支持在整个时段内排序，已按时间从新到旧排列（可按时间、严重程度从高到低、标题排序）",
                      "this column cannot be sorted over the whole window: newest first instead (sort by time, "
                      "by severity from high to low, or by title)"),
    "sort_title_window": ("按标题排序仅限 {minutes} 分钟以内的时段，已按时间从新到旧排列（请先选择 15 分钟或 1 小时）",
                          "sorting by title is limited to windows of at most {minutes} minutes: newest first "
                          "instead (choose 15 min or 1 hour first)"),
    "col_time": ("时间", "Time"),
    "col_domain": ("类别", "Domain"),
    "col_kind": ("类型", "Kind"),
    "col_street": ("街道", "Street"),
    "col_severity": ("等级", "Severity"),
    "col_title": ("标题", "Title"),
    "col_value": ("数值", "Value"),
    "table_hint": ("表头可排序；筛选行支持 =、>=、<= 与包含（时间列除外）",
                   "Sort by the headers; filter with =, >=, <= or text (not on time)"),
    "updated": ("更新于 {t}", "updated {t}"),
    # the officers' tables as files (dashboard/web/exports.py): what the table shows, with its filters and sort
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_xlsx": ("导出 Excel", "Export Excel"),
    "col_district": ("行政区", "District"),
    "col_opened": ("上报时间", "Opened"),
    "col_reports": ("报告数", "Reports"),
    "col_status": ("状态", "Status"),
    "col_escalated": ("已升级", "Escalated"),
    # the task board's and the alert trail's exports
    "col_department": ("部门", "Department"),
    "col_incident": ("事件", "Incident"),
    "col_state": ("任务状态", "Task state"),
    "col_deadline": ("时限", "Deadline"),
    "col_coordination": ("协调", "Coordinating"),
    "col_level": ("预警级别", "Level"),
    "col_place": ("地点", "Place"),
    "col_started": ("开始时间", "Started"),
    "col_resolved": ("解除时间", "Resolved"),
    "col_baseline": ("基线", "Baseline"),
    # incident statuses and task states (SPEC section 6), in the words of Shenzhen's dispatch desks:
    # 派单 -> 签收 -> 到场 -> 办结 -> 结案; one set for every page
    # The English words are never the stored codes themselves: a raw "open" on a screen reads as a bug.
    "status_open": ("待派单", "Awaiting dispatch"),
    "status_dispatched": ("已派单", "Dispatched"),
    "status_in_progress": ("处置中", "In progress"),
    "status_resolved": ("已办结", "Resolved"),
    "status_closed": ("已结案", "Closed"),
    "task_dispatched": ("待签收", "Awaiting acknowledgement"),
    "task_acknowledged": ("已签收", "Acknowledged"),
    "task_on_scene": ("已到场", "On scene"),
    "task_resolved": ("已办结", "Resolved"),
    "task_closed": ("已结案", "Closed"),
    "task_rejected": ("已退回", "Rejected"),
    "task_escalated": ("已超时升级", "Escalated (overdue)"),
    # an incident raised to emergency management (dashboard.dispatch.escalation): its own mark, not a status
    "incident_escalated": ("已升级", "Escalated"),
    "task_coordination": ("协调", "Coordinating"),
    # who wrote an audit row when no person did (dashboard.dispatch.board.SYSTEM_ACTOR)
    "actor_system": ("系统", "system"),
    "act_acknowledged": ("签收", "Acknowledge"),
    "act_on_scene": ("到场", "On scene"),
    "act_resolved": ("办结", "Resolve"),
    "act_rejected": ("退回", "Reject"),
    "sev_1": ("一般", "info"),
    "sev_2": ("较大", "minor"),
    "sev_3": ("重大", "major"),
    "sev_4": ("特别重大", "critical"),
    # not found
    "not_found": ("未找到页面", "Page not found"),
    "not_found_route": ("没有这个页面：{path}", "There is no page at {path}"),
    "not_found_district": ("没有编号或名称为“{name}”的行政区", "There is no district with code or name “{name}”"),
    # a district centre's user (SPEC section 13) on another district's page
    "other_district_title": ("仅限本区", "Your own district only"),
    "other_district": ("您属于{own}指挥中心，只能查看本区的数据，不能查看{other}。",
                       "You belong to the {own} district centre: you see your own district's data, not {other}'s."),
    # early warning: the alert-list on /, /wall and /m (SPEC section 9)
    "alerts": ("预警", "Alerts"),
    "level_blue": ("蓝色", "Blue"),
    "level_yellow": ("黄色", "Yellow"),
    "level_orange": ("橙色", "Orange"),
    "level_red": ("红色", "Red"),
    "alert_firing": ("预警中", "firing"),
    "alert_acknowledged": ("已确认", "acknowledged"),
    "alert_since": ("自 {time}", "since {time}"),
    "alert_city": ("全市", "City-wide"),
    "alert_ack": ("确认", "Acknowledge"),
    "alerts_none": ("暂无预警", "No alerts"),
    "alerts_more": ("另有 {n} 条预警", "{n} more alerts"),
    "alert_acked": ("已确认：{title}", "Acknowledged: {title}"),
    "alert_stale": ("预警已变化，请按最新状态再确认", "The alert changed meanwhile: check it again before acknowledging"),
    "alert_not_firing": ("该预警已不在预警中", "That alert is no longer firing"),
    "alert_gone": ("该预警不存在", "No such alert"),
    "alert_not_allowed": ("无权确认预警", "You may not acknowledge alerts"),
    "alert_signed_out": ("请重新登录", "Please sign in again"),
    # the notifications' delivery log (/notifications, GET /api/notifications)
    "notify_summary": ("待发送 {pending} 条 · 发送失败 {failed} 条", "{pending} waiting · {failed} failed"),
    "notify_oldest": ("最早一条已等待 {min} 分钟", "the oldest has waited {min} min"),
    "notify_filter_status": ("状态", "Status"),
    "notify_filter_channel": ("渠道", "Channel"),
    "notify_all": ("全部", "All"),
    "notify_none": ("暂无通知", "No notifications"),
    "notify_shown": ("显示最新 {n} 条", "the newest {n} shown"),
    "notify_col_time": ("时间", "Time"),
    "notify_col_channel": ("渠道", "Channel"),
    "notify_col_to": ("发送对象", "To"),
    "notify_col_subject": ("内容", "Message"),
    "notify_col_status": ("状态", "Status"),
    "notify_col_tries": ("尝试", "Tries"),
    "notify_col_last": ("最近结果", "Last outcome"),
    "notify_pending": ("待发送", "waiting"),
    "notify_sending": ("发送中", "sending"),
    "notify_sent": ("已送达", "delivered"),
    "notify_failed": ("发送失败", "failed"),
    "notify_cancelled": ("已取消", "cancelled"),
    "notify_webhook": ("回调推送", "Webhook"),
    "notify_email": ("电子邮件", "Email"),
    "notify_sms": ("短信", "SMS"),
    "notify_next_try": ("下次尝试 {time}", "next try {time}"),
    "notify_sent_at": ("送达于 {time}", "delivered {time}"),
    "notify_ok": ("成功", "ok"),
    "notify_key": ("幂等键", "Idempotency key"),
    # /alerts: the alert trail and silences (officers, commanders)
    "page_alerts": ("预警管理", "Alerts"),
    "alert_pending": ("待定", "pending"),
    "alert_resolved": ("已解除", "resolved"),
    "alerts_trail": ("预警记录", "Alert trail"),
    "alerts_status": ("状态", "Status"),
    "alerts_level": ("级别", "Level"),
    "alerts_district": ("行政区", "District"),
    "alerts_all_districts": ("全部行政区", "All districts"),
    "alerts_shown": ("共 {n} 条，最新在前", "{n} alerts, newest first"),
    "alerts_shown_max": ("最新 {n} 条（已达上限，请缩小筛选范围）", "The newest {n} (the most shown: narrow the filters)"),
    "alerts_match_none": ("没有符合条件的预警", "No alert matches"),
    "alert_started": ("开始 {time}", "began {time}"),
    "alert_resolved_at": ("解除 {time}", "resolved {time}"),
    "alert_value": ("数值 {value}，基线 {baseline}", "value {value}, baseline {baseline}"),
    "alert_history": ("处理记录（{n}）", "History ({n})"),
    "silences": ("静默", "Silences"),
    "silences_none": ("当前没有生效的静默", "No silence in force"),
    "silence_what": ("静默对象", "Silences"),
    "silence_rule": ("规则", "Rule"),
    "silence_any_rule": ("任一规则", "Any rule"),
    "silence_any_district": ("任一行政区", "Any district"),
    "silence_any_zone": ("任一区域", "Any zone"),
    "silence_zone": ("区域", "Zone"),
    "silence_until": ("截止（{tz}）", "Until ({tz})"),
    "silence_reason": ("原因", "Reason"),
    "silence_add": ("添加静默", "Add silence"),
    "silence_end": ("提前结束", "End now"),
    "silence_until_at": ("至 {time}", "until {time}"),
    "silence_by": ("{who} 设置", "set by {who}"),
    "silence_added": ("已添加静默 #{id}", "Silence #{id} added"),
    "silence_ended": ("静默 #{id} 已结束", "Silence #{id} ended"),
    "silence_err_bad_request": ("请至少选择规则、行政区或区域之一，并填写原因", "Choose a rule, a district or a zone, and say why"),
    "silence_err_unknown_rule": ("没有这条规则", "No such rule"),
    "silence_err_unknown_district": ("没有这个行政区", "No such district"),
    "silence_err_other_district": ("区指挥中心只能静默本区的预警", "A district centre silences its own district's alerts only"),
    "silence_err_unknown_zone": ("没有这个区域", "No such zone"),
    "silence_err_bad_until": ("截止时间须在未来 30 天内，格式如 2026-12-06 22:00", "The end must be within the next 30 days, as 2026-12-06 22:00"),
    "silence_err_ended": ("该静默已结束", "That silence has ended already"),
    "silence_err_gone": ("该静默不存在", "No such silence"),
    # the major-incident mode (layouts/major.py): the command view, its card on /m, its buttons
    "major_mode": ("应急响应", "Major incident"),
    "major_level": ("{level}级响应", "Level {level} response"),
    "major_declared_by": ("{who} 于 {time} 启动", "declared by {who} at {time}"),
    "major_radius": ("半径 {km} 公里", "radius {km} km"),
    "major_place_approx": ("（位置取行政区中心）", "(place: the district's centre)"),
    "major_map": ("现场态势", "The scene"),
    "major_events": ("范围内实时事件（{n}）", "Live events in range ({n})"),
    "major_no_events": ("范围内暂无事件", "No event in range"),
    "major_tasks": ("各部门任务", "Tasks by department"),
    "major_no_tasks": ("尚未派单", "Not dispatched yet"),
    "major_units": ("出动力量", "Units sent"),
    "major_unit_km": ("距现场直线 {km} 公里", "{km} km from the scene, straight line"),
    "major_unit_where": ("位置未知", "position unknown"),
    "major_alerts": ("相关预警（{n}）", "Related alerts ({n})"),
    "major_no_alerts": ("暂无相关预警", "No related alert"),
    "major_timeline": ("处置时间线", "Timeline"),
    "major_all": ("同时进行的应急响应", "Major incidents now"),
    "major_due_ack": ("签收", "acknowledge"),
    "major_due_resolve": ("办结", "resolve"),
    "major_due_left": ("剩余 {m} 分钟", "{m} min left"),
    "major_due_over": ("超时 {m} 分钟", "{m} min overdue"),
    "major_pick": ("响应级别", "Response level"),
    "major_declare": ("启动应急响应", "Declare major incident"),
    "major_change": ("调整响应级别", "Change the level"),
    "major_stand_down": ("终止应急响应", "Stand down"),
    "major_confirm_declare": ("确认以所选级别启动（或调整）应急响应？全中心屏幕将切换到指挥视图。",
                              "Declare the major incident at the chosen level (or change to it)? Every screen of "
                              "the centre switches to its command view."),
    "major_confirm_stand_down": ("确认终止应急响应？全中心屏幕将恢复平时状态。",
                                 "Stand the major incident down? Every screen returns to peacetime."),
    "major_done_declared": ("已启动{level}级应急响应", "Level {level} declared"),
    "major_done_stood_down": ("已终止应急响应", "Stood down"),
    "major_failed": ("未执行：{why}", "Not done: {why}"),
    "status_level_1": ("I级", "level I"),
    "status_level_2": ("II级", "level II"),
    "status_level_3": ("III级", "level III"),
    "status_level_4": ("IV级", "level IV"),
    "status_stood_down": ("已终止", "stood down"),
    "status_done": ("已完成", "done"),
    "status_overdue": ("已超时", "overdue"),
    "procedure": ("处置预案（已完成 {done}/{n}）", "Standard procedure ({done} of {n} done)"),
    "step_tick": ("标记完成", "Mark done"),
    "step_done_by": ("{who} {time} 完成", "done by {who} at {time}"),
    "step_escalated": ("已超时升级", "overdue, escalated"),
    "step_due": ("时限", "due"),
    "step_ticked": ("已完成：{step}", "Done: {step}"),
    "major_level_1": ("I级（特别重大）", "I (extremely grave)"),
    "major_level_2": ("II级（重大）", "II (grave)"),
    "major_level_3": ("III级（较大）", "III (serious)"),
    "major_level_4": ("IV级（一般）", "IV (general)"),
}

# What the audit trail records as a code with parameters (task_events.code, .params), said when shown;
# ``{dep}`` is a department code, named in the reader's language.
_AUDIT = {
    "incident_escalated": ("升级：由{dep}协调", "escalated: {dep} coordinates"),
    "coordination": ("{dep}参与协调", "{dep} joins to coordinate"),
    "coordination_dispatched": ("{dep}由协调转为派单", "{dep} dispatched (was coordinating)"),
    "task_escalated": ("{dep}任务超时升级", "{dep}'s overdue task escalated"),
    "overdue_ack": ("未按时签收", "not acknowledged by the deadline"),
    "overdue_resolve": ("未按时办结", "not resolved by the deadline"),
    "task_moved": ("{dep}：{to}", "{dep}: {to}"),
    "resolved_on_behalf": ("代{dep}登记办结", "resolution recorded on behalf of {dep}"),
    "cmd_seen": ("指挥长已知悉", "seen by the commander"),
    "cmd_approved": ("指挥长批准", "approved by the commander"),
    # the major-incident mode (dispatch.major): levels as Roman numerals, I the gravest
    # standard procedures (dispatch.procedure): {step} the step's words, recorded in both languages
    "step_done": ("预案步骤完成：{step}（{dep}）", "procedure step done: {step} ({dep})"),
    "step_overdue": ("预案步骤超时未完成，已通知值班：{step}（{dep}）", "procedure step overdue, duty told: {step} ({dep})"),
    "major_declared": ("启动{level}级应急响应", "major incident declared: level {level}"),
    "major_level": ("应急响应级别由{from}级调整为{level}级", "major incident level changed from {from} to {level}"),
    "major_stood_down": ("终止{level}级应急响应", "major incident (level {level}) stood down"),
    "task_redispatched": ("{dep}任务重新派单，时限重新起算", "{dep}'s task dispatched again, deadlines restarted"),
    # written by builds before 0009 as the note "指挥长升级 / escalated by the commander" (read as this code)
    "cmd_escalated": ("指挥长升级", "escalated by the commander"),
    # early warning (alert_events.code)
    "alert_pending": ("预警条件成立，持续时间未满", "condition holds; its duration has not yet passed"),
    "alert_firing": ("预警发布", "alert firing"),
    "alert_acknowledged": ("预警已确认", "alert acknowledged"),
    "alert_resolved": ("预警条件解除", "condition cleared; alert resolved"),
    "alert_retired": ("规则 {rule} 已从预警规则中删除，预警解除", "rule {rule} was removed from the alert rules; alert resolved"),
    "alert_silenced": ("因静默 #{silence} 暂不发布", "held back by silence #{silence}"),
    "alert_muted": ("处于例行静默时段 {window}，暂不发布", "held back by the mute window {window}"),
    "alert_incident": ("已生成事件 #{incident}", "opened incident #{incident}"),
    # duty escalation (alert_events and task_events; dashboard.storage.escalations): each step as scheduled
    "esc_step": ("第 {round} 轮第 {level} 级：{role} {who}，{at} 通知（{channels}），确认即停止",
                 "round {round}, level {level}: {role} {who}, told at {at} ({channels}) unless acknowledged first"),
    "esc_replanned": ("值班调整：第 {round} 轮第 {level} 级改为 {role} {who}，{at} 通知（{channels}）",
                      "duty changed: round {round}, level {level} now tells {role} {who} at {at} ({channels})"),
    "esc_nobody": ("{dep}无人值班可通知", "nobody on duty to tell at {dep}"),
    "esc_stopped": ("升级停止：{n} 条待发通知已取消", "escalation stopped: {n} pending notifications cancelled"),
    # merge and split (dispatch.merge); ``{incident}`` is the other incident's number
    "merged_into": ("已并入事件 #{incident}", "merged into #{incident}"),
    "merged_from": ("事件 #{incident} 已并入（{n} 条上报）", "merged from #{incident} ({n} report(s))"),
    "task_merged_in": ("{dep}任务随事件 #{incident} 并入", "{dep}'s task came with #{incident}"),
    "task_merge_ended": ("{dep}已在事件 #{incident} 处置：本任务结束，时限停止",
                         "{dep} already works on #{incident}: this task ended, its deadlines stopped"),
    "split_to": ("{n} 条上报拆分为事件 #{incident}", "{n} report(s) split off into #{incident}"),
    "split_from": ("由事件 #{incident} 拆分而来（{n} 条上报）", "split from #{incident} ({n} report(s))"),
    # response units (task_events.action "unit"; dashboard.dispatch.units, .fleet, storage.units)
    "unit_assigned": ("派出力量 {unit}，正在前往", "unit {unit} sent, en route"),
    "unit_on_scene": ("力量 {unit} 随任务到场", "unit {unit} on scene with its task"),
    "unit_released": ("任务结束，力量 {unit} 恢复待命", "task ended: unit {unit} available again"),
    "unit_released_by_crew": ("力量 {unit} 自报待命或下勤，退出任务", "unit {unit} reported itself free or off duty: left the task"),
    # district centres (dispatch.handover): ``{district}`` the centre it came from, ``{to_district}`` the one it goes
    # to, each said as that district's centre; ``{districts}`` the districts its reports span, by name
    "handed_up": ("{district}指挥中心 上报市指挥中心", "handed up by the {district} centre to the city centre"),
    "taken_up": ("市指挥中心 收回{district}指挥中心处置的事件", "taken up by the city centre from the {district} centre"),
    "handed_down": ("市指挥中心 下派{to_district}指挥中心", "handed down by the city centre to the {to_district} centre"),
    "handed_across": ("市指挥中心 将事件由{district}指挥中心改派{to_district}指挥中心",
                      "moved by the city centre from the {district} centre to the {to_district} centre"),
    "auto_up_severity": ("严重程度 S{severity} 达到上报标准（S{threshold} 及以上）：{district}指挥中心 自动上报市指挥中心",
                         "severity S{severity} reaches the hand-up level (S{threshold} or more): handed up "
                         "automatically by the {district} centre to the city centre"),
    "auto_up_span": ("上报涉及多个区（{districts}）：{district}指挥中心 自动上报市指挥中心",
                     "reports span districts ({districts}): handed up automatically by the {district} centre to the "
                     "city centre"),
}

# Roles on duty (rosters.yaml) and the channels that reach them, as the audit and /rosters say them.
_DUTY = {
    "officer": ("值班员", "duty officer"),
    "deputy": ("副值班长", "deputy"),
    "commander": ("值班领导", "commander on duty"),
    "sms": ("短信", "SMS"),
    "email": ("邮件", "e-mail"),
    "webhook": ("系统推送", "webhook"),
}


def duty_word(key: str, lang: str = "zh") -> str:
    """Return a role on duty or a channel in words (an unknown one as it is)."""
    return pick(_DUTY, key, lang) if key in _DUTY else key


# What a page says when the domain refuses (DomainError.key, else its kind's code); the API keeps the message.
_ERRORS = {
    "bad_request": ("请求有误，未执行", "Not done: the request was not valid"),
    "not_found": ("该事件或任务已不存在，请刷新", "That incident or task no longer exists: reload"),
    "forbidden": ("无权执行此操作", "You may not do this"),
    "version_conflict": ("已被他人更新，请查看最新状态后重试", "It changed meanwhile: check the latest state and retry"),
    "invalid_transition": ("当前状态下不能执行此操作", "This cannot be done in its present state"),
    "reject_needs_note": ("退回须在备注中写明原因", "Say why in the note to reject"),
    "resolve_for_needs_note": ("请在备注中写明部门由谁、以何种方式告知已办结",
                               "Say in the note who in the department reported the resolution, and how"),
    "name_a_department": ("请至少选择一个部门", "Choose at least one department"),
    "already_dispatched": ("所选部门均已有进行中的任务", "Every department chosen already holds a live task"),
    "step_done_already": ("该步骤已完成", "That step is done already"),
    "major_done": ("事件已办结或关闭，不能启动应急响应", "A resolved or closed incident cannot be declared major"),
    "major_none": ("该事件未启动应急响应", "This incident is not a major incident"),
    "escalated_already": ("该事件已升级", "This incident is escalated already"),
    "staffed": ("该部门有人在系统上，由其自行办结", "The department has people on the system: they resolve it"),
    "merge_self": ("不能并入事件本身", "An incident cannot be merged into itself"),
    "merge_done": ("该事件已结束或已被合并，不能再合并", "This incident is over or merged already"),
    "merge_chain": ("目标事件已并入其他事件，请并入最终事件", "That incident was merged into another: merge into that one"),
    "merge_into_done": ("目标事件已办结或已结案，不能并入", "That incident is resolved or closed: nothing merges into it"),
    "split_done": ("该事件已结束，不能拆分", "This incident is over: it cannot be split"),
    "split_foreign": ("所选上报不属于该事件，请刷新", "A report chosen is not this incident's: reload"),
    "split_some": ("请勾选部分上报：不能一条不选，也不能全选", "Tick some of the reports: not none, and not all"),
    "replay_bad_at": ("回放时刻格式有误（例：2026-11-26T08:30:00+08:00）",
                      "The replay time is not valid (e.g. 2026-11-26T08:30:00+08:00)"),
    "replay_future": ("回放时刻不能晚于当前时间", "The replay time cannot be in the future"),
    "replay_too_old": ("回放时刻早于数据保留期限", "The replay time is older than the data kept"),
    "replay_bad_speed": ("回放速度须为 0、1、5、15 或 60", "The replay speed must be 0, 1, 5, 15 or 60"),
    "task_not_live": ("任务已结束，不能再派出力量", "The task has ended: no more units can be sent to it"),
    "unit_unknown": ("没有这个力量", "No such unit"),
    "unit_other_department": ("该力量不属于任务所在部门", "That unit belongs to another department than the task"),
    "unit_off_duty": ("该力量已下勤", "That unit is off duty"),
    "unit_busy": ("该力量正在执行其他任务", "That unit is on another task"),
    # district centres (dispatch.handover)
    "unknown_district": ("没有这个区", "No such district"),
    "no_district_centres": ("本市未设区级指挥中心", "This city has no district centres"),
    "already_city_centre": ("该事件已由市指挥中心处置", "The city centre runs this incident already"),
    "already_that_centre": ("该事件已由该区指挥中心处置", "That district centre runs this incident already"),
    "incident_done": ("事件已办结或结案，不能再移交", "A resolved or closed incident is not handed over"),
    "district_not_involved": ("该事件不涉及所选的区，只能下派到事件所在的区",
                              "The incident does not involve that district: hand it down to one of its own"),
    "not_your_centre": ("只能上报本区指挥中心处置的事件", "You may hand up only the incidents your centre runs"),
    "district_cannot_hand_down": ("区级指挥中心不能下派事件", "A district centre does not hand incidents down"),
}


def error_text(err, lang: str = "zh") -> str:
    """Return what a page says when the domain refused: its reason in words, never the English message."""
    key = getattr(err, "key", None)
    if key not in _ERRORS:
        key = getattr(err, "code", None)
    return pick(_ERRORS, key if key in _ERRORS else "bad_request", lang)


def audit_text(code: str | None, params: dict | None, lang: str = "zh", departments: dict | None = None,
               districts: dict | None = None) -> str:
    """Return an audit code said in ``lang``: departments by name, states by their label, districts (codes in
    ``district``, ``to_district``, ``districts``) by the names ``districts`` gives them ("" for no code)."""
    if not code:
        return ""
    if code not in _AUDIT:
        return code  # a code this build does not know is shown as it is, never dropped
    raw = params or {}
    fmt = {"dep": "", "to": "", **{k: str(v) for k, v in raw.items() if isinstance(k, str)}}
    names = districts or {}
    for key in ("district", "to_district"):
        if key in fmt:
            fmt[key] = names.get(fmt[key], fmt[key])
    if isinstance(raw.get("districts"), list):
        fmt["districts"] = ("、" if lang == "zh" else ", ").join(names.get(str(c), str(c)) for c in raw["districts"])
    if lang == "en":  # a name recorded in both languages: ``who`` and ``who_en``
        fmt.update({k.removesuffix("_en"): v for k, v in fmt.items() if k.endswith("_en")})
    if "role" in fmt:
        fmt["role"] = duty_word(fmt["role"], lang)
    if "channels" in fmt:
        fmt["channels"] = ("、" if lang == "zh" else ", ").join(duty_word(c, lang) for c in fmt["channels"].split(",")
                                                                 if c)
    if "dep" in fmt:
        fmt["dep"] = (departments or {}).get(fmt["dep"], fmt["dep"])
    if "to" in fmt and f"task_{fmt['to']}" in _TEXT:
        fmt["to"] = t(f"task_{fmt['to']}", lang)
    zh, en = _AUDIT[code]
    # A parameter an older row lacks is said as "-", never a KeyError that would hide the whole trail.
    return counted(en.format_map(_Blank(fmt))) if lang == "en" else zh.format_map(_Blank(fmt))


class _Blank(dict):
    """A format mapping that says a missing key as "-"."""

    def __missing__(self, key: str) -> str:
        return "-"


# Event kinds of SPEC section 3; kinds the catalogue does not know are shown as they came.
_KINDS = {
    "theft": ("盗窃", "theft"), "fight": ("打架斗殴", "fight"), "crowd_density": ("人群密度", "crowd density"),
    "intrusion": ("非法闯入", "intrusion"), "suspicious_vehicle": ("可疑车辆", "suspicious vehicle"),
    "congestion": ("拥堵", "congestion"), "accident": ("交通事故", "accident"), "road_closure": ("封路", "road closure"),
    "signal_fault": ("信号灯故障", "signal fault"), "speed": ("车速", "speed"),
    "aqi": ("空气质量指数", "AQI"), "pm25": ("PM2.5", "PM2.5"), "noise": ("噪声", "noise"),
    "water_level": ("水位", "water level"), "rainfall": ("降雨", "rainfall"),
    "pollution_discharge": ("排污", "pollution discharge"),
    "fire": ("火情", "fire"), "flood": ("内涝", "flood"), "gas_leak": ("燃气泄漏", "gas leak"),
    "building_collapse": ("建筑坍塌", "building collapse"), "medical": ("医疗急救", "medical"),
    "public_complaint": ("市民投诉", "public complaint"),
}


def html_lang(lang: str) -> str:
    """Return the BCP 47 tag of ``lang`` for an HTML ``lang`` attribute: ``en``, else ``zh-CN``."""
    # Screen readers pick their voice by it, browsers their CJK fonts (zh-CN: Simplified glyph shapes).
    return "en" if lang == "en" else "zh-CN"


# An English count and its noun written "{n} report(s)": said "1 report", "3 reports", "1,200 reports" once formatted.
_COUNTED = re.compile(r"\b(\d[\d,]*) (\w+)\(s\)")


def counted(text: str) -> str:
    """Return English ``text`` with each "N noun(s)" in its number: "1 report", "2 reports" (an "http(s)" with no
    count before it is left as it is)."""
    return _COUNTED.sub(lambda m: f"{m[1]} {m[2]}{'' if m[1] == '1' else 's'}", text)


def pick(texts: dict[str, tuple[str, str]], key: str, lang: str = "zh", **fmt) -> str:
    """Return ``texts[key]``, a (Chinese, English) pair, in ``lang`` (falling back to Chinese), formatted."""
    zh, en = texts[key]
    if lang != "en":
        return zh.format(**fmt) if fmt else zh
    return counted(en.format(**fmt)) if fmt else en


def t(key: str, lang: str = "zh", **fmt) -> str:
    """Return the shared interface text ``key`` in ``lang``, formatted with ``fmt``."""
    return pick(_TEXT, key, lang, **fmt)


def state_label(state: str, lang: str = "zh", task: bool = False) -> str:
    """Return an incident status (``task``: a task state) in words; every status and state of SPEC section 6 has
    words in both languages, so only a value no build wrote comes back as it is."""
    for key in ((f"task_{state}", f"status_{state}") if task else (f"status_{state}", f"task_{state}")):
        if key in _TEXT:
            return t(key, lang)
    return state


def actor_label(actor: str, lang: str = "zh", system: str = "system") -> str:
    """Return who wrote an audit row: a person's user name as it is, the system in words."""
    return t("actor_system", lang) if actor == system else actor


def kind_label(kind: str, lang: str = "zh") -> str:
    """Return the name of an event kind, or the kind itself when the catalogue does not know it."""
    names = _KINDS.get(kind)
    return (names[1] if lang == "en" else names[0]) if names else kind


def kind_labels(lang: str = "zh") -> dict[str, str]:
    """Return every known kind's name in one language (what the browser needs to label events)."""
    return {k: kind_label(k, lang) for k in _KINDS}


def texts(keys, lang: str = "zh") -> dict[str, str]:
    """Return the unformatted texts of ``keys`` in one language."""
    return {k: t(k, lang) for k in keys}


def district_name(district, lang: str = "zh") -> str:
    """Return a district's name in the language shown."""
    return district.name_en if lang == "en" else district.name


def alert_place(row: dict, city, lang: str = "zh") -> str:
    """Return where an alert is: its zone, else its district, else the whole city (list, map and trail alike)."""
    zone = city.alert_rules.zones.get(row["zone"]) if row.get("zone") else None
    if zone is not None:
        return zone.name_en if lang == "en" else zone.name
    district = city.by_code.get(row["district"]) if row.get("district") else None
    if district is not None:
        return district_name(district, lang)
    return row.get("district") or t("alert_city", lang)
