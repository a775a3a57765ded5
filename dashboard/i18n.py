"""Translate the interface: Simplified Chinese by default, English on request."""

from __future__ import annotations

LANGUAGES = ("zh", "en")

_TEXT = {
    "app_title": ("城市运行全景", "City Operations Panorama"),
    "security": ("公共安全", "Security"),
    "traffic": ("交通", "Traffic"),
    "environment": ("生态环境", "Environment"),
    "incident": ("待处置事件", "Incidents"),
    "events_in_window": ("{minutes} 分钟内事件", "events in {minutes} min"),
    "latest_events": ("最新事件", "Latest events"),
    "feed_status": ("数据源状态", "Feed status"),
    "never": ("无数据", "no data"),
    "seconds_ago": ("{s} 秒前", "{s} s ago"),
    "mode_embedded": ("内置演示模式", "embedded demo mode"),
    "language": ("English", "中文"),
    "untitled": ("（无标题）", "(untitled)"),
    "unavailable": ("数据暂不可用，正在重试", "data unavailable, retrying"),
}


def t(key: str, lang: str = "zh", **fmt) -> str:
    """Return the text of ``key`` in ``lang`` (falling back to Chinese), formatted with ``fmt``."""
    zh, en = _TEXT[key]
    text = en if lang == "en" else zh
    return text.format(**fmt) if fmt else text


def district_name(district, lang: str = "zh") -> str:
    """Return a district's name in the language shown."""
    return district.name_en if lang == "en" else district.name
