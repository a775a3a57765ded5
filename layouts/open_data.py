"""Lay out /open: the open data's licence, fields, withheld counts, how to get a key, and examples (public)."""

from __future__ import annotations

from dash import html

from dashboard.core.i18n import pick, t
from layouts.common import lang_toggle, panel, topbar

_TEXT = {
    "open_title": ("开放数据", "Open data"),
    "open_intro": ("城市运行全景按行政区、小时、类别和类型公开事件数量，供开发者、研究者和公众使用。"
                   "只公开数量：事件的标题、详情、来源、坐标和街道从不公开。",
                   "The operations centre publishes how many events there were per district, hour, domain and "
                   "kind, for developers, researchers and the public. Counts only: no title, detail, source, "
                   "coordinates or street of an event is ever published."),
    "licence_title": ("许可协议", "Licence"),
    "licence": ("数据以知识共享署名 4.0 国际许可协议（CC BY 4.0）开放：可自由复制、分发和改作，包括商业用途，"
                "但须注明来源“{city}城市运行管理中心”。数据按现状提供，不作任何保证。",
                "The data is open under the Creative Commons Attribution 4.0 International licence (CC BY 4.0): "
                "copy, share and adapt it freely, commercially too, crediting “{city} City Operations Centre”. "
                "It comes as it is, without any warranty."),
    "fields_title": ("字段", "Fields"),
    "col_field": ("字段", "Field"),
    "col_meaning": ("含义", "Meaning"),
    "f_district": ("行政区代码（如 440304 为福田区）", "the district's administrative code (440304 is Futian)"),
    "f_hour": ("该小时的开始时间，符合 RFC 3339，采用城市所在时区：", "the hour's start as RFC 3339, in the city's time zone: "),
    "f_domain": ("类别：公共安全、交通、生态环境、突发事件之一", "the domain: security, traffic, environment or incident"),
    "f_kind": ("事件类型，如火情、拥堵、空气质量", "the kind of event, such as a fire, congestion or air quality"),
    "f_count": ("该小时内的事件数量", "how many such events there were in that hour"),
    "withheld_title": ("少量数据不公开", "Small counts are withheld"),
    "withheld": ("某一行政区、小时、类别和类型的事件少于 {n} 起时，该行不出现在结果中（不以空值出现），"
                 "以免据此识别个人或具体事件。缺少的行表示 0 至 {m} 起。各区合计只累加公开的行。",
                 "When a district, hour, domain and kind has fewer than {n} events, its row is left out (never "
                 "sent empty), so that no person or single event can be told from it. A missing row means 0 to "
                 "{m}. A district's totals add up the published rows only."),
    "endpoints_title": ("接口", "Endpoints"),
    "e_counts": ("按行政区、小时、类别和类型的数量；格式为 JSON 或 CSV；可按行政区和类别筛选",
                 "counts per district, hour, domain and kind, as JSON or CSV; filter by district and domain"),
    "e_geojson": ("各行政区边界及其在时段内按类别的数量（GeoJSON）",
                  "every district's boundary with its counts per domain over the range (GeoJSON)"),
    "e_openapi": ("接口说明（OpenAPI 3.1），无需密钥", "the API's description (OpenAPI 3.1); no key needed"),
    "range": ("时段用 from 和 to 指定（RFC 3339，须带时区），最长 {days} 天；缺省为最近 24 小时。",
              "Give the range as from and to (RFC 3339 with its offset), at most {days} days; by default the "
              "last 24 hours."),
    "key_title": ("获取密钥", "Getting a key"),
    "key": ("请向城市运行管理中心申请密钥，说明用途和联系人。管理员以下列命令创建密钥，密钥只显示一次："
            "每次请求在 X-API-Key 请求头中携带。",
            "Ask the operations centre for a key, saying what it is for and who to contact. An administrator "
            "creates it with the command below; the key is shown once. Send it with every request in the "
            "X-API-Key header."),
    "rate": ("每个密钥每{period}最多 {n} 次请求；超出时返回 429，Retry-After 响应头给出需等待的秒数。",
             "Each key may make {n} requests a {period}; past that the answer is 429, and its Retry-After "
             "header says how many seconds to wait."),
    "per_second": ("秒", "second"),
    "per_minute": ("分钟", "minute"),
    "per_hour": ("小时", "hour"),
    "per_day": ("天", "day"),
    "examples_title": ("示例", "Examples"),
    "ex_counts": ("福田区昨天的交通数量（CSV）：", "Futian's traffic counts for a day, as CSV:"),
    "ex_geojson": ("各区一周的数量（GeoJSON）：", "Every district's counts over a week, as GeoJSON:"),
}
PERIODS = {1: "per_second", 60: "per_minute", 3600: "per_hour", 86_400: "per_day"}
FIELDS = ("district", "hour", "domain", "kind", "count")


def text(key: str, lang: str, **fmt) -> str:
    """Return the open-data page's text ``key`` in ``lang``."""
    return pick(_TEXT, key, lang, **fmt)


def _code(s: str) -> html.Code:
    return html.Code(s, className="open-code")


def open_layout(lang: str, city_name: str, tz: str, rate_limit: int, rate_period_s: int, max_days: int,
                min_count: int) -> html.Main:
    """Return /open in ``lang``; field names, paths and commands are code, every other word is the reader's."""
    fields = html.Table(
        [html.Thead(html.Tr([html.Th(text("col_field", lang)), html.Th(text("col_meaning", lang))])),
         html.Tbody([html.Tr([html.Td(_code(f)), html.Td([text(f"f_{f}", lang)] + ([_code(tz)] if f == "hour" else []))]) for f in FIELDS])],
        className="open-fields")
    endpoints = html.Ul([
        html.Li([_code("GET /api/open/counts?from=&to=&district=&domain=&format=json|csv"), " — ",
                 text("e_counts", lang)]),
        html.Li([_code("GET /api/open/districts.geojson?from=&to="), " — ", text("e_geojson", lang)]),
        html.Li([html.A(_code("GET /api/open/openapi.json"), href="/api/open/openapi.json"), " — ",
                 text("e_openapi", lang)]),
    ])
    counts = ('curl -H "X-API-Key: $KEY" "https://<host>/api/open/counts?district=440304&domain=traffic'
              '&from=2026-12-05T00:00:00%2B08:00&to=2026-12-06T00:00:00%2B08:00&format=csv"')
    geojson = ('curl -H "X-API-Key: $KEY" "https://<host>/api/open/districts.geojson'
               '?from=2026-11-29T00:00:00%2B08:00&to=2026-12-06T00:00:00%2B08:00"')
    period = text(PERIODS.get(rate_period_s, "per_minute"), lang)
    return html.Main(
        [topbar(lang, t("app_title", lang), lang_toggle(lang)),
         html.Div([
             html.H1(text("open_title", lang), id="open-title", className="district-title"),
             html.P(text("open_intro", lang)),
             panel(text("licence_title", lang), html.P(text("licence", lang, city=city_name)), id="open-licence"),
             panel(text("fields_title", lang), fields, id="open-fields"),
             panel(text("withheld_title", lang), html.P(text("withheld", lang, n=min_count, m=min_count - 1)),
                   id="open-withheld"),
             panel(text("endpoints_title", lang), endpoints, html.P(text("range", lang, days=max_days)),
                   id="open-endpoints"),
             panel(text("key_title", lang), html.P(text("key", lang)),
                   html.Pre(_code("flask --app app:server apikeys create OWNER")),
                   html.P(text("rate", lang, n=rate_limit, period=period)), id="open-key"),
             panel(text("examples_title", lang), html.P(text("ex_counts", lang)), html.Pre(_code(counts)),
                   html.P(text("ex_geojson", lang)), html.Pre(_code(geojson)), id="open-examples"),
         ], className="open-page")],
        className="page page-open",
    )
